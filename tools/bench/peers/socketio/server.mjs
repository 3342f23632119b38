// The Socket.IO peer that chattr-bench measures Chattr against: the same chat workload on
// Socket.IO 4 (Node), WebSocket transport only, no compression. A client connects with
// `auth: {nick}`, joins rooms with `join` (answered `joined`), and `message` (room, text) goes to
// everyone in the room, the sender included, as `message` {from, target, text}.
//
//   PORT=0 node server.mjs   (prints "listening addr=127.0.0.1:<port>")

import { createServer } from "node:http";
import { Server } from "socket.io";

const http = createServer();
const io = new Server(http, {
  transports: ["websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  // Longer than any run: the benchmark's readers do not answer pings.
  pingInterval: 600_000,
  pingTimeout: 600_000,
});

io.on("connection", (socket) => {
  const nick = String(socket.handshake.auth?.nick ?? socket.id);
  socket.on("join", (room) => {
    socket.join(String(room));
    socket.emit("joined", String(room));
  });
  socket.on("message", (room, text) => {
    io.to(String(room)).emit("message", { from: nick, target: String(room), text: String(text) });
  });
});

http.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`listening addr=127.0.0.1:${http.address().port}`);
});
