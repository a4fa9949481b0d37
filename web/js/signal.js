// The signalling socket: typed JSON messages (src/signal/protocol.rs). Requests get an `id`;
// the answer or `error` with that id settles the request's promise. Everything else is an
// event: `socket.addEventListener('message', e => e.detail)`.

export class SignalError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class Signal extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.nextId = 1;
    this.pending = new Map();
    this.ws = null;
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        resolve();
      };
      ws.onerror = () => {
        if (!opened) reject(new SignalError('socket', 'cannot open the signalling socket'));
      };
      ws.onclose = (event) => {
        for (const { reject: fail } of this.pending.values()) fail(new SignalError('closed', 'the connection closed'));
        this.pending.clear();
        if (!opened) reject(new SignalError('socket', 'cannot open the signalling socket'));
        this.dispatchEvent(new CustomEvent('close', { detail: event }));
      };
      ws.onmessage = (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        const waiting = message.id !== undefined && this.pending.get(message.id);
        if (waiting) {
          this.pending.delete(message.id);
          if (message.type === 'error') waiting.reject(new SignalError(message.code, message.message));
          else waiting.resolve(message);
          return;
        }
        this.dispatchEvent(new CustomEvent('message', { detail: message }));
      };
    });
  }

  /** Sends a request and waits for its answer. */
  request(message, timeoutMs = 15000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new SignalError('closed', 'not connected'));
        return;
      }
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new SignalError('timeout', `no answer to ${message.type}`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => (clearTimeout(timer), resolve(value)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      this.ws.send(JSON.stringify({ ...message, id }));
    });
  }

  close() {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
  }
}
