// One WebSocket to your wsdeploy API that survives what API Gateway does to long-lived sockets: it closes a socket
// idle for 10 minutes and every socket after 2 hours. No dependency:
//
//   import { connectSocket } from './wsdeploy-socket.js';
//   const socket = connectSocket({
//     url: import.meta.env.VITE_WS_URL,          // written by `wsdeploy up` / `wsdeploy dev`
//     getToken: () => auth.currentToken(),        // the token your backend accepts on POST /socket-connections
//     onMessage: (data, { topic }) => {},          // each message your backend sends (sendMessage, or publish to a
//                                                 // topic you subscribed: `topic` says which), once and in order,
//                                                 // across reconnects
//     onPresence: ({ topic, userId, online }) => {}, // a topic's subscriber came online or went (not replayed: ask
//                                                 // your backend for presence() after a reconnect)
//     onStatus: (status, detail) => {},           // see STATUSES below
//     onGap: ({ after, next }) => {},             // messages after id `after` and before `next` are lost (the user
//                                                 // was away longer than the backend keeps them): reload your state
//   });
//   socket.close();                               // on logout
//
// What it does about the limits:
// - Heartbeat: {"action":"ping"} every heartbeatMs (default 5 min) on the open socket; API Gateway answers
//   {"action":"pong"} itself (a MOCK integration: no function runs), and so does `wsdeploy dev`.
// - Make-before-break: after renewMs (default 110 min, less a random tenth so that pages spread out) it opens and
//   authenticates a new socket, and only then closes the old one.
// - Reconnect: a socket that drops is replaced after a random delay of up to initialMs x 2^failures (at most maxMs):
//   exponential backoff with full jitter, so that pages dropped together do not come back together.
// - Resume: the backend templates number each user's messages and keep the last ones; every auth message carries
//   the last id this page saw (`resumeAfter`), the backend sends what came after it, and ids seen already are
//   dropped. Messages that arrive ahead of a missing one wait up to gapMs for it, then onGap is called.
//
// Tuning for tests: `wsdeploy dev --idle-timeout 3s --max-connection 10s` with heartbeatMs: 1000, renewMs: 7000.

/** What onStatus reports, in the order a page usually sees them. */
export const STATUSES = [
  'connecting', //     opening the first socket
  'authenticating', // a socket is open, its auth message sent
  'connected', //      authenticated: messages flow
  'renewing', //       connected, and a replacement socket is being opened (make-before-break)
  'reconnecting', //   no usable socket; detail: { attempt, delayMs } until the next try
  'unauthorized', //   the backend refused the token: log in again and call connectSocket anew
  'closed', //         socket.close() was called
];

const PING = JSON.stringify({ action: 'ping' });
const OPEN = 1;

export function connectSocket({
  url,
  getToken,
  onMessage,
  onStatus = () => {},
  onGap = () => {},
  onPresence = () => {},
  heartbeatMs = 5 * 60 * 1000,
  renewMs = 110 * 60 * 1000,
  backoff: { initialMs = 500, maxMs = 30 * 1000 } = {},
  gapMs = 2000,
  authTimeoutMs = 15 * 1000,
  WebSocket: Socket = globalThis.WebSocket,
}) {
  if (!url) throw new Error('no WebSocket URL: run `wsdeploy dev` or `wsdeploy up`, which write it into your env file');
  // The user's token travels on this socket: wss:// only, but for this machine (`wsdeploy dev` serves ws://).
  const { protocol, hostname, host } = new URL(url);
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(hostname);
  if (protocol !== 'wss:' && !(protocol === 'ws:' && local)) {
    throw new Error(`refusing ${protocol}//${host}: the token would travel in cleartext; use the wss:// URL wsdeploy wrote`);
  }
  if (!Socket) throw new Error('no WebSocket here: pass connectSocket({ WebSocket }) (in Node, from the ws package)');

  const inbox = inOrder({ onMessage, onGap, gapMs });
  let stopped = false;
  let current = null; // the authenticated socket
  let pending = null; // a socket being opened and authenticated: the first, a reconnect or a renewal
  let failures = 0;
  let first = true;
  const timers = { retry: null, renew: null, heartbeat: null };
  const report = (status, detail) => {
    if (!stopped) onStatus(status, detail);
  };

  function open() {
    clearTimeout(timers.retry);
    timers.retry = null;
    const ws = new Socket(url);
    pending = ws;
    const renewing = current !== null;
    // A reconnect was reported by retry(), with its delay.
    if (renewing) report('renewing');
    else if (first) report('connecting');
    first = false;
    const authTimer = setTimeout(() => ws.close(), authTimeoutMs);
    ws.onopen = async () => {
      if (!renewing) report('authenticating');
      let token;
      try {
        token = await getToken();
      } catch (err) {
        console.error('wsdeploy: cannot get a token for the socket', err);
        return ws.close();
      }
      if (ws.readyState !== OPEN) return;
      const resumeAfter = inbox.lastId();
      ws.send(JSON.stringify({ action: 'auth', token, ...(resumeAfter === null ? {} : { resumeAfter }) }));
    };
    ws.onmessage = (event) => {
      const data = parse(event.data);
      if (data && data.type === 'auth' && ws === pending) {
        clearTimeout(authTimer);
        if (data.ok) return promote(ws);
        // {"retry": true}: the backend was unreachable, try again later; anything else: this token is refused.
        if (data.retry) return ws.close();
        report('unauthorized', { error: data.error });
        return close();
      }
      if (data && data.action === 'pong') return;
      if (data && data.type === 'push' && Number.isSafeInteger(data.id)) return inbox.push(data.id, data.data, data.topic);
      if (data && data.type === 'presence') return call(onPresence, { topic: data.topic, userId: data.userId, online: data.online });
      onMessage(data === undefined ? event.data : data);
    };
    ws.onclose = () => {
      clearTimeout(authTimer);
      dropped(ws);
    };
  }

  // The new socket is authenticated: it takes over, then the old one goes. Everything the old one would still have
  // received reaches the new one too (the backend sends to both once the new one is registered, and replays what
  // came before), so nothing is lost by closing it now.
  function promote(ws) {
    const old = current;
    current = ws;
    pending = null;
    failures = 0;
    clearInterval(timers.heartbeat);
    timers.heartbeat = setInterval(() => ws.readyState === OPEN && ws.send(PING), heartbeatMs);
    clearTimeout(timers.renew);
    timers.renew = setTimeout(() => pending === null && open(), renewMs * (0.9 + 0.1 * Math.random()));
    if (old) {
      old.onclose = null;
      old.onmessage = null;
      old.close(1000, 'replaced');
    }
    report('connected');
  }

  function dropped(ws) {
    if (stopped) return;
    if (ws === current) {
      current = null;
      clearInterval(timers.heartbeat);
      clearTimeout(timers.renew);
      // A renewal already under way takes over; otherwise reconnect, first with a short random delay only (a
      // gateway that drops every socket at once should not get them all back at once).
      if (pending) return report('reconnecting', { attempt: 0, delayMs: 0 });
      return retry();
    }
    if (ws === pending) {
      pending = null;
      failures++;
      retry();
    }
  }

  function retry() {
    const delayMs = Math.round(Math.random() * Math.min(maxMs, initialMs * 2 ** failures));
    if (!current) report('reconnecting', { attempt: failures + 1, delayMs });
    timers.retry = setTimeout(open, delayMs);
  }

  // The browser knows when the network is back: try at once rather than at the end of a long backoff.
  const online = () => {
    if (!stopped && !current && !pending) open();
  };
  globalThis.addEventListener?.('online', online);

  function close() {
    if (stopped) return;
    clearTimeout(timers.retry);
    clearTimeout(timers.renew);
    clearInterval(timers.heartbeat);
    for (const ws of [current, pending]) {
      if (ws) {
        ws.onclose = null;
        ws.close(1000, 'closed');
      }
    }
    current = pending = null;
    inbox.stop();
    globalThis.removeEventListener?.('online', online);
    onStatus('closed');
    stopped = true;
  }

  open();
  return {
    close,
    /** The authenticated socket, or null between sockets. */
    get socket() {
      return current;
    },
    /** The id of the last message handed to onMessage (null before the first). */
    get lastId() {
      return inbox.lastId();
    },
  };
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// The app's callback, whose exceptions must not stop the socket.
function call(callback, ...args) {
  try {
    callback(...args);
  } catch (err) {
    console.error('wsdeploy: a callback threw', err);
  }
}

// Hands each numbered message to onMessage once, in id order. Ids of one user are consecutive, so a message ahead
// of the next expected id waits (up to gapMs) for the missing one, which is in flight on the other socket or in the
// backend's replay; if it never comes, onGap says what was lost and delivery goes on.
function inOrder({ onMessage, onGap, gapMs }) {
  let last = null;
  const held = new Map();
  let gapTimer = null;
  const deliver = ({ data, topic }, id) => call(onMessage, data, topic === undefined ? { id } : { id, topic });
  const drain = () => {
    while (held.has(last + 1)) {
      last += 1;
      const message = held.get(last);
      held.delete(last);
      deliver(message, last);
    }
    clearTimeout(gapTimer);
    gapTimer = held.size > 0 ? setTimeout(skip, gapMs) : null;
  };
  const skip = () => {
    const next = Math.min(...held.keys());
    onGap({ after: last, next });
    last = next - 1;
    drain();
  };
  return {
    lastId: () => last,
    push(id, data, topic) {
      if (last === null) last = id - 1; // the first message this page sees: what came before is not its to get
      if (id <= last || held.has(id)) return; // seen already: a replay, or the other socket's copy
      held.set(id, { data, topic });
      drain();
    },
    stop: () => clearTimeout(gapTimer),
  };
}
