// React hooks over wsdeploy-socket.js: one socket for the app, the messages of a topic where a component needs them,
// and who is online in a topic. Needs React 18 or later, nothing else:
//
//   import { useSocket, useTopic, usePresence } from './wsdeploy-react.js';
//   function App() {
//     const socket = useSocket({ url: import.meta.env.VITE_WS_URL, getToken });  // high in the tree, once
//     return <Room socket={socket} room="room-1" />;                               // socket.status for a badge
//   }
//   function Room({ socket, room }) {
//     const [messages, setMessages] = useState([]);
//     useTopic(socket, room, (data) => setMessages((m) => [...m, data]));        // each once, in order, resumed
//     const online = usePresence(socket, room, initialFromYourApi);              // [userId, ...], kept current
//   }
//
// - One socket per useSocket, opened on mount and closed on unmount; StrictMode's mount, unmount and mount again
//   leaves exactly one open. Options are read when it opens: the callbacks may change every render (they are read
//   through a ref), a new `url` opens a new socket.
// - useTopic(socket, topic, handler): the messages your backend publishes to `topic` (null: those sent to the user
//   with sendMessage or broadcast; undefined: every message). Subscribing is your backend's decision
//   (sockets.subscribe); this only routes what arrives.
// - usePresence(socket, topic, initial): `initial` is what your backend's presence(topic) said (presence events are
//   not replayed, so ask again after a reconnect: socket.status turning 'connected' is the moment); then each event
//   for the topic adds or removes its user.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { connectSocket } from './wsdeploy-socket.js';

/** The app's socket: { status, detail, lastId, close, on('message' | 'presence', handler) -> off }. */
export function useSocket({ url, getToken, ...options }) {
  const latest = useRef({ getToken, options });
  latest.current = { getToken, options };
  const [state, setState] = useState({ status: 'connecting', detail: undefined });
  // Listeners live outside React state: a message is routed synchronously, in the order it arrived.
  const listeners = useMemo(() => ({ message: new Set(), presence: new Set() }), []);
  const handle = useRef(null);

  useEffect(() => {
    // StrictMode (and a new url) closes this socket while the next opens: what the old one says is not news.
    let live = true;
    const socket = connectSocket({
      ...latest.current.options,
      url,
      getToken: () => latest.current.getToken(),
      onMessage: (data, meta) => {
        if (!live) return;
        for (const l of listeners.message) l(data, meta);
        latest.current.options.onMessage?.(data, meta);
      },
      onPresence: (event) => {
        if (!live) return;
        for (const l of listeners.presence) l(event);
        latest.current.options.onPresence?.(event);
      },
      onStatus: (status, detail) => {
        if (!live) return;
        setState({ status, detail });
        latest.current.options.onStatus?.(status, detail);
      },
      onGap: (gap) => live && latest.current.options.onGap?.(gap),
    });
    handle.current = socket;
    return () => {
      live = false;
      handle.current = null;
      socket.close();
    };
  }, [url, listeners]);

  const on = useCallback((kind, handler) => {
    listeners[kind].add(handler);
    return () => listeners[kind].delete(handler);
  }, [listeners]);
  const close = useCallback(() => handle.current?.close(), []);
  return useMemo(
    () => ({
      ...state,
      on,
      close,
      get lastId() {
        return handle.current?.lastId ?? null;
      },
    }),
    [state, on, close],
  );
}

/** Calls `handler(data, { id, topic })` for each message of `topic` (null: without a topic; undefined: all). */
export function useTopic(socket, topic, handler) {
  const latest = useRef(handler);
  latest.current = handler;
  const on = socket.on;
  useEffect(
    () =>
      on('message', (data, meta) => {
        if (topic === undefined || (meta.topic ?? null) === topic) latest.current(data, meta);
      }),
    [on, topic],
  );
}

/** The users online in `topic`: `initial` (your backend's presence(topic)), then kept current by its events. */
export function usePresence(socket, topic, initial = []) {
  const [online, setOnline] = useState(() => [...new Set(initial)]);
  const key = JSON.stringify(initial);
  useEffect(() => setOnline([...new Set(JSON.parse(key))]), [key, topic]);
  const on = socket.on;
  useEffect(
    () =>
      on('presence', ({ topic: t, userId, online: isOnline }) => {
        if (t !== topic) return;
        setOnline((now) => (isOnline ? (now.includes(userId) ? now : [...now, userId]) : now.filter((u) => u !== userId)));
      }),
    [on, topic],
  );
  return online;
}
