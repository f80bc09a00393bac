// The agent softphone page: a WebSocket to the admin server's /api/softphone (the token in the
// first message) and an RTCPeerConnection whose audio the server bridges into calls
// (docs/operations.md, "Agent softphone"). No build step, no library. It draws its own
// controls into the page's <main id="main"> (the portal's page shell, /portal/softphone), and
// takes the portal's token from sessionStorage when the person logged in there.

const softphone = (() => {
  const $ = (id) => document.getElementById(id);
  const state = { ws: null, pc: null, stream: null, call: null };

  // One element: tag, its attributes ({id, type, ...}; text goes in as text), its children.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  const button = (id, text) => el("button", { id, type: "button", disabled: "", text });
  const field = (id, label, attrs = {}) =>
    el("p", {}, el("label", { for: id, text: label + " " }), el("input", { id, ...attrs }));

  function draw(main) {
    main.append(
      el("fieldset", { id: "connect-form" }, el("legend", { text: "Sign in" }),
        field("token", "API token", { type: "password", autocomplete: "off", size: "40" }),
        field("agent", "Agent number", { size: "20", placeholder: "+38733100201 or 201" }),
        el("button", { id: "connect", type: "button", text: "Connect" }),
        button("disconnect", "Disconnect")),
      el("fieldset", {}, el("legend", { text: "Agent" }),
        el("p", {}, "Phone: ", el("strong", { id: "registration", text: "not connected" })),
        el("p", {}, "Queues: ", el("strong", { id: "agent-state", text: "-" }), " ",
          el("span", { id: "agent-reason" })),
        button("login", "Log in"),
        el("input", { id: "pause-reason", size: "10", placeholder: "reason code" }),
        button("pause", "Pause"), button("unpause", "Unpause"), button("logout", "Log out")),
      el("fieldset", {}, el("legend", { text: "Call" }),
        el("p", {}, "Audio: ", el("strong", { id: "media", text: "not started" })),
        el("p", { id: "incoming" }),
        el("p", {}, "Call: ", el("strong", { id: "call-state", text: "none" }), " ",
          el("span", { id: "call-detail" })),
        button("accept", "Answer"), button("hold", "Hold"), button("resume", "Resume"),
        el("input", { id: "transfer-to", size: "14", placeholder: "extension or number" }),
        button("transfer", "Transfer"), button("hangup", "Hang up")),
      el("p", { id: "error", role: "alert" }),
      el("audio", { id: "remote", autoplay: "" }));
  }

  // The admin server this page came from; ?server=http://host:port names another.
  function socketUrl() {
    const given = new URLSearchParams(location.search).get("server");
    const base = new URL(given || location.href);
    base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    base.pathname = "/api/softphone";
    base.search = "";
    return base.toString();
  }

  function send(message) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
  }

  function show(id, text) { $(id).textContent = text == null ? "" : text; }

  function enable(ids, on) { for (const id of ids) $(id).disabled = !on; }

  // The microphone goes out only during a call: between calls the sender has no track and
  // nothing is sent (the server sends nothing either).
  function microphone(on) {
    if (!state.pc || !state.stream) return;
    const track = on ? state.stream.getAudioTracks()[0] : null;
    for (const sender of state.pc.getSenders()) sender.replaceTrack(track);
  }

  function callButtons(callState) {
    state.call = callState;
    microphone(["talking", "held", "transferring"].includes(callState));
    enable(["accept"], callState === "ringing");
    enable(["hold", "transfer"], callState === "talking");
    enable(["resume"], callState === "held");
    enable(["hangup"], ["ringing", "talking", "held", "transferring"].includes(callState));
  }

  async function startAudio() {
    state.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    const pc = new RTCPeerConnection({ iceServers: [] });
    state.pc = pc;
    for (const track of state.stream.getAudioTracks()) pc.addTrack(track, state.stream);
    pc.ontrack = (event) => { $("remote").srcObject = event.streams[0] || new MediaStream([event.track]); };
    pc.onconnectionstatechange = () => show("media", pc.connectionState);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    microphone(state.call !== null && state.call !== undefined);
    send({ type: "offer", sdp: pc.localDescription.sdp });
  }

  // The server takes every candidate in the offer (no trickle): wait for the gathering's end.
  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === "complete") {
          pc.removeEventListener("icegatheringstatechange", done);
          resolve();
        }
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000);
    });
  }

  const handlers = {
    ready(m) {
      show("agent-state", m.agent.state);
      show("agent-reason", m.agent.reason || "");
      enable(["login", "pause", "unpause", "logout"], true);
      startAudio().catch((e) => show("error", "microphone or WebRTC failed: " + e));
    },
    answer(m) { state.pc.setRemoteDescription({ type: "answer", sdp: m.sdp }); },
    registration(m) { show("registration", m.registered ? "registered" : "not registered: " + m.detail); },
    agent(m) {
      show("agent-state", m.state);
      show("agent-reason", m.reason || "");
      if (m.outcome === "no_licence" || m.outcome === "refused") show("error", m.detail);
    },
    incoming(m) {
      show("incoming", "Incoming: " + (m.display || m.caller));
      show("call-state", "ringing");
      show("call-detail", m.caller);
      callButtons("ringing");
    },
    call(m) {
      show("call-state", m.state);
      show("call-detail", m.detail);
      if (m.state === "ended") show("incoming", "");
      callButtons(m.state === "ended" ? null : m.state);
    },
    error(m) { show("error", m.error); },
  };

  function connect() {
    const token = $("token").value.trim();
    const agent = $("agent").value.trim();
    if (!token || !agent) { show("error", "give the API token and the agent's number"); return; }
    sessionStorage.setItem("callserver.token", token);
    sessionStorage.setItem("callserver.agent", agent);
    show("error", "");
    const ws = new WebSocket(socketUrl());
    state.ws = ws;
    ws.onopen = () => send({ type: "hello", token, agent });
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const handler = handlers[message.type];
      if (handler) handler(message);
    };
    ws.onclose = (event) => {
      show("registration", "not connected" + (event.reason ? ": " + event.reason : ""));
      enable(["login", "pause", "unpause", "logout"], false);
      callButtons(null);
      hangUpMedia();
      enable(["connect"], true);
      enable(["disconnect"], false);
    };
    enable(["connect"], false);
    enable(["disconnect"], true);
  }

  function hangUpMedia() {
    if (state.pc) state.pc.close();
    if (state.stream) for (const track of state.stream.getTracks()) track.stop();
    state.pc = state.stream = null;
    show("media", "not started");
  }

  function wire() {
    draw($("main"));
    $("token").value = sessionStorage.getItem("callserver.token") || "";
    $("agent").value = sessionStorage.getItem("callserver.agent") || "";
    $("connect").onclick = connect;
    $("disconnect").onclick = () => state.ws && state.ws.close();
    $("login").onclick = () => send({ type: "login" });
    $("logout").onclick = () => send({ type: "logout" });
    $("unpause").onclick = () => send({ type: "unpause" });
    $("pause").onclick = () => {
      const reason = $("pause-reason").value.trim();
      send(reason ? { type: "pause", reason } : { type: "pause" });
    };
    $("accept").onclick = () => send({ type: "accept" });
    $("hold").onclick = () => send({ type: "hold" });
    $("resume").onclick = () => send({ type: "resume" });
    $("hangup").onclick = () => send({ type: "hangup" });
    $("transfer").onclick = () => send({ type: "transfer", to: $("transfer-to").value.trim() });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
  return { state };
})();

window.softphone = softphone;  // for a test's look at the peer connection's statistics
