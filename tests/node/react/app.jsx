// The page tests/node/react.mjs runs: the template's hooks (templates/frontend/wsdeploy-react.js) in StrictMode, as
// a React app would use them. window.TEST holds the socket URL, the user's token and the lobby's online list.
import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { usePresence, useSocket, useTopic } from '../../../templates/frontend/wsdeploy-react.js';

function Room({ socket, room }) {
  const [messages, setMessages] = useState([]);
  useTopic(socket, room, (data) => setMessages((m) => [...m, data.text]));
  return (
    <ul id={room}>
      {messages.map((text, i) => (
        <li key={i}>{text}</li>
      ))}
    </ul>
  );
}

function Chat({ url, token, initial }) {
  const socket = useSocket({ url, getToken: () => token });
  const online = usePresence(socket, 'lobby', initial);
  return (
    <main>
      <span id="status">{socket.status}</span>
      <Room socket={socket} room="lobby" />
      <Room socket={socket} room="random" />
      <ul id="online">
        {[...online].sort().map((u) => (
          <li key={u}>{u}</li>
        ))}
      </ul>
    </main>
  );
}

function App() {
  const [mounted, setMounted] = useState(true);
  window.unmount = () => setMounted(false);
  return mounted ? <Chat {...window.TEST} /> : <p id="unmounted">unmounted</p>;
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
