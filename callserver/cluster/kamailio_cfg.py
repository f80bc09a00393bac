"""The text of the edge's kamailio.cfg (Kamailio 5.6), with the node list's values left out.

``cluster.edge_config`` fills in the ``%%NAME`` fields. The routing logic itself is fixed:

* ``request_route``: Max-Forwards and sanity checks; retransmissions absorbed (tm); CANCEL
  follows its INVITE; any ``X-Callserver-Source`` is removed from every request. A request from
  a node (``ds_is_from_list``: the source address and port of a dispatcher entry) is
  relayed on its Route or Request-URI (``FROM_NODE``). Any other request is a caller's: pike
  counts it against its source address (over the density: dropped unanswered), it gets
  ``X-Callserver-Source: $si:$sp``, then an in-dialog request follows its Route
  (``WITHINDLG``) and a new one goes to a node (``DISPATCH``), record-routed when it makes a
  dialog, with Path (``add_path_received``) when it is a REGISTER.
* ``DISPATCH``: dispatcher set 1, hashed over the Call-ID (``ds_select_dst("1", "0")``): a
  call's challenge and its answer reach the same node (each node's digest nonces are its own),
  different calls spread like round robin, and only active nodes are chosen.
* ``NODE_FAILED``: no reply from the node within the reply timeout marks it inactive
  (``ds_mark_dst("ip")``: probing brings it back) and the request goes to the next node; so
  does a 5xx without a ``Reason`` (a node shutting down, overloaded); a 5xx with a Reason (a
  channel limit the nodes share) is the answer for this call and goes back to the caller.
* ``FROM_NODE``: a call to a phone carries the Route of the phone's Path (this edge, with the
  phone's ``received`` address: the path module sends it there), and is record-routed; an
  in-dialog request follows its dialog's Route, or goes to its Request-URI (the phone's
  Contact) when the phone left the edge out of its route set.
* A node's 503 reaches the caller as a 503 (tm ``remap_503_500`` off), with its Reason and
  Retry-After.
* OPTIONS probing of every node (``ds_probing_mode=1``) each probe interval: a node that does
  not answer within the reply timeout is marked inactive; a node back is active after one
  answered probe. Transitions are logged (``event_route[dispatcher:dst-down|dst-up]``).
"""

from __future__ import annotations

__all__ = ["KAMAILIO_CFG"]

KAMAILIO_CFG = r"""#!KAMAILIO
#
# The SIP edge of a callserver cluster (docs/scaling.md, "The edge"): Kamailio 5.6.
# Written by `callserver edge-config %%SOURCE`; change the node list and run it again
# rather than editing this file.

####### Global parameters #########

debug=2
log_stderror=no
log_facility=LOG_LOCAL0
fork=yes
children=%%CHILDREN
# Only the addresses below are this edge: no alias for the host's other addresses (with one
# for 127.0.0.1 every loopback port would be "myself" and in-dialog requests would loop, 483).
auto_aliases=no
%%LISTEN
tcp_connection_lifetime=3605
tcp_accept_no_cl=yes
enable_sctp=no
dns=no
rev_dns=no
server_header="Server: callserver-edge"
user_agent_header="User-Agent: callserver-edge"

####### Modules ########

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "path.so"
loadmodule "pike.so"
loadmodule "dispatcher.so"

# A node that sends no reply within this many milliseconds has failed this request.
modparam("tm", "fr_timer", %%REPLY_TIMEOUT)
modparam("tm", "fr_inv_timer", 120000)
# A node's 503 (over a channel limit: Reason Q.850 cause 34, Retry-After) reaches the caller as
# a 503, not the 500 RFC 3261 §16.7 suggests: the caller's retry and overflow depend on it.
modparam("tm", "remap_503_500", 0)
modparam("rr", "enable_full_lr", 0)
# Requests to a phone carry Route: <this edge;received=the phone's address>: send them there.
modparam("path", "use_received", 1)
# Floods: more than %%PIKE_REQUESTS requests from one source address in 2 s are dropped.
modparam("pike", "sampling_time_unit", 2)
modparam("pike", "reqs_density_per_unit", %%PIKE_REQUESTS)
modparam("pike", "remove_latency", 4)
modparam("dispatcher", "list_file", "%%DISPATCHER_LIST")
modparam("dispatcher", "flags", 2)
modparam("dispatcher", "ds_ping_method", "OPTIONS")
modparam("dispatcher", "ds_ping_from", "sip:edge@%%PING_HOST")
modparam("dispatcher", "ds_ping_interval", %%PROBE_INTERVAL)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_probing_threshold", %%PROBE_THRESHOLD)
modparam("dispatcher", "ds_inactive_threshold", 1)
modparam("dispatcher", "ds_ping_reply_codes", "class=2")

####### Routing logic ########

request_route {
	route(REQINIT);
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			route(RELAY);
		}
		exit;
	}
	if (!is_method("ACK")) {
		if (t_precheck_trans()) {
			t_check_trans();
			exit;
		}
		t_check_trans();
	}
	remove_hf("%%SOURCE_HEADER");
	if (ds_is_from_list("1", "2")) {
		route(FROM_NODE);
	}
	if (!pike_check_req()) {
		exit;
	}
	append_hf("%%SOURCE_HEADER: $si:$sp\r\n");
	if (has_totag()) {
		route(WITHINDLG);
	}
	if (is_method("OPTIONS") && uri == myself && $rU == $null) {
		sl_send_reply("200", "OK");
		exit;
	}
	if (is_method("INVITE|SUBSCRIBE|REFER")) {
		record_route();
	}
	if (is_method("REGISTER")) {
		add_path_received();
	}
	route(DISPATCH);
}

route[REQINIT] {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (!sanity_check("17895", "7")) {
		exit;
	}
}

# A caller's request inside a dialog this edge record-routed: on to the node that holds it.
route[WITHINDLG] {
	if (loose_route()) {
		route(RELAY);
	}
	if (is_method("ACK")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	sl_send_reply("404", "Not Here");
	exit;
}

# A node's request: a call or a qualify OPTIONS to a phone (Route from the phone's Path), or a
# request inside a dialog (its Route).
route[FROM_NODE] {
	if (has_totag()) {
		if (loose_route()) {
			route(RELAY);
		}
		if (is_method("ACK") && t_check_trans()) {
			route(RELAY);
		}
		# A phone that left this edge out of its dialog's route set (it did not copy the
		# Record-Route): the node still sends on the phone's flow, here; on to its Contact.
		if (uri != myself) {
			route(RELAY);
		}
		if (!is_method("ACK")) {
			sl_send_reply("404", "Not Here");
		}
		exit;
	}
	# loose_route() takes this edge's entry off the Path's Route and the path module sends the
	# request to its received address; a Route that ends here is "pre-loaded": it says false.
	loose_route();
	if (uri == myself && $du == $null) {
		sl_send_reply("404", "Not Here");
		exit;
	}
	if (is_method("INVITE|SUBSCRIBE|REFER")) {
		record_route();
	}
	route(RELAY);
}

route[DISPATCH] {
	if (!ds_select_dst("1", "0")) {
		sl_send_reply("503", "No Node Available");
		exit;
	}
	t_on_failure("NODE_FAILED");
	route(RELAY);
}

route[RELAY] {
	if (!t_relay()) {
		sl_reply_error();
	}
	exit;
}

failure_route[NODE_FAILED] {
	if (t_is_canceled()) {
		exit;
	}
	if (t_branch_timeout() && !t_branch_replied()) {
		xlog("L_WARN", "edge: node $du sent no reply: marked inactive\n");
		ds_mark_dst("ip");
	} else if (!t_check_status("5[0-9][0-9]") || $T_rpl($hdr(Reason)) != $null) {
		exit;
	}
	if (ds_next_dst()) {
		xlog("L_NOTICE", "edge: $rm $ci failed over to $du\n");
		t_on_failure("NODE_FAILED");
		route(RELAY);
	}
}

event_route[dispatcher:dst-down] {
	xlog("L_WARN", "edge: node $ru down\n");
}

event_route[dispatcher:dst-up] {
	xlog("L_NOTICE", "edge: node $ru up\n");
}
"""
