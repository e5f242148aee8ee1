// Connections in memory: enough for one process in development. With several instances, or to keep connections
// across restarts, implement the same three methods over your database (a table connectionId -> userId).
'use strict';

class MemoryConnectionStore {
  constructor() {
    this.users = new Map(); // connectionId -> userId
  }

  add(connectionId, userId) {
    this.users.set(connectionId, userId);
  }

  remove(connectionId) {
    this.users.delete(connectionId);
  }

  forUser(userId) {
    return [...this.users].filter(([, u]) => u === userId).map(([c]) => c);
  }

  /** Every user with at least one open socket. */
  connectedUsers() {
    return [...new Set(this.users.values())];
  }
}

module.exports = { MemoryConnectionStore };
