"""A Centrex subscriber's voicemail box: its messages, PIN and greeting, the menu that reads
them out, message waiting indication, e-mail of new messages and the retention purge."""
