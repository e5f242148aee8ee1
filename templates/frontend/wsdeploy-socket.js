// One WebSocket to your wsdeploy API that survives reconnects (API Gateway closes idle sockets after 10 minutes
// and every socket after 2 hours). `npm install reconnecting-websocket`, then:
//
//   import { connectSocket } from './wsdeploy-socket.js';
//   const socket = connectSocket({
//     url: import.meta.env.VITE_WS_URL,          // written by `wsdeploy up` / `wsdeploy dev`
//     getToken: () => auth.currentToken(),        // the token your backend accepts on POST /socket-connections
//     onMessage: (data) => console.log(data),     // whatever your backend sends with SocketService.sendMessage
//     onStatus: (status) => console.log(status),  // 'connecting' | 'authenticating' | 'connected' | 'unauthorized'
//     heartbeatMs: 5 * 60 * 1000,                 // optional: how often to ping (API Gateway drops a socket idle 10 min)
//   });
//   socket.close();                               // on logout
import ReconnectingWebSocket from 'reconnecting-websocket';

// API Gateway answers {"action":"ping"} with {"action":"pong"} itself (a MOCK integration, no function runs), and so
// does `wsdeploy dev`.
const PING = JSON.stringify({ action: 'ping' });

export function connectSocket({ url, getToken, onMessage, onStatus = () => {}, heartbeatMs = 5 * 60 * 1000 }) {
  if (!url) throw new Error('no WebSocket URL: run `wsdeploy dev` or `wsdeploy up`, which write it into your env file');
  // The user's token travels on this socket: wss:// only, but for this machine (`wsdeploy dev` serves ws://).
  const { protocol, hostname, host } = new URL(url);
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(hostname);
  if (protocol !== 'wss:' && !(protocol === 'ws:' && local)) {
    throw new Error(`refusing ${protocol}//${host}: the token would travel in cleartext; use the wss:// URL wsdeploy wrote`);
  }
  const ws = new ReconnectingWebSocket(url, [], {
    minReconnectionDelay: 500,
    maxReconnectionDelay: 10000,
  });
  onStatus('connecting');
  // A ping well inside the idle limit keeps a quiet socket open; one timer per open socket.
  let heartbeat = null;
  const stopHeartbeat = () => {
    clearInterval(heartbeat);
    heartbeat = null;
  };

  // A new socket is a new connectionId that the backend knows nothing about: authenticate on every (re)connect.
  ws.addEventListener('open', async () => {
    stopHeartbeat();
    heartbeat = setInterval(() => ws.send(PING), heartbeatMs);
    onStatus('authenticating');
    try {
      const token = await getToken();
      ws.send(JSON.stringify({ action: 'auth', token }));
    } catch (err) {
      console.error('wsdeploy: cannot get a token for the socket', err);
      ws.close();
    }
  });

  ws.addEventListener('message', (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return onMessage(event.data);
    }
    if (data && data.action === 'pong') return;
    // The auth route's reply: {"type": "auth", "ok": true} or {"type": "auth", "ok": false, "error": "..."}.
    if (data && data.type === 'auth') {
      if (data.ok) return onStatus('connected');
      onStatus('unauthorized');
      // Reconnecting with the same token would be refused again; log in and call connectSocket anew.
      return ws.close();
    }
    onMessage(data);
  });

  ws.addEventListener('close', () => {
    stopHeartbeat();
    if (ws.readyState !== ReconnectingWebSocket.CLOSED) onStatus('connecting');
  });

  return {
    close: () => {
      stopHeartbeat();
      ws.close();
    },
    socket: ws,
  };
}
