// A DDP client (Meteor's protocol, as Rocket.Chat speaks it on /websocket): method calls,
// stream subscriptions that survive reconnects, and reconnection with backoff. It knows nothing
// about chat; `onopen` lets the app log in again before subscriptions are renewed.

const PING_EVERY_MS = 25000;

export class Ddp {
  constructor(url) {
    this.url = url;
    this.nextId = 1;
    this.pending = new Map(); // method id -> {resolve, reject}
    this.subs = new Map(); // sub id -> {name, params, onEvent, ready}
    this.state = 'connecting';
    this.attempt = 0;
    this.onstate = () => {};
    /** Awaited after each (re)connect, before subscriptions are sent again. */
    this.onopen = async () => {};
    this.onpresence = () => {};
    this.onconnected = () => {};
    this.socket = null;
    this.retryAt = 0;
    this.waiters = new Set(); // callbacks run once the connection is up
  }

  start() {
    this.open();
  }

  setState(state) {
    this.state = state;
    this.onstate(state);
    if (state === 'connected') {
      for (const wake of this.waiters) wake();
      this.waiters.clear();
    }
  }

  /**
   * Resolves once the connection is up, or rejects as `offline` after `ms`: a form submitted while
   * the page is still connecting waits for the socket instead of failing at once.
   */
  connected(ms = 10000) {
    if (this.state === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(Object.assign(new Error('Not connected to the server'), { offline: true }));
      }, ms);
      this.waiters.add(wake);
    });
  }

  open() {
    clearTimeout(this.retryTimer);
    this.setState('connecting');
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ msg: 'connect', version: '1', support: ['1', 'pre2', 'pre1'] }));
    socket.onmessage = (e) => this.receive(e.data);
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      clearInterval(this.pinger);
      for (const [, call] of this.pending) call.reject(Object.assign(new Error('Connection lost'), { offline: true }));
      this.pending.clear();
      for (const sub of this.subs.values()) sub.ready = false;
      this.scheduleRetry();
    };
  }

  scheduleRetry() {
    this.attempt += 1;
    const delay = Math.min(10000, 500 * 2 ** Math.min(this.attempt - 1, 5));
    this.retryAt = Date.now() + delay;
    this.setState('offline');
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** Reconnects now (the "retry" button). */
  retryNow() {
    if (!this.socket) this.open();
  }

  async receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    switch (frame.msg) {
      case 'connected':
        this.attempt = 0;
        this.pinger = setInterval(() => this.send({ msg: 'ping' }), PING_EVERY_MS);
        try {
          await this.onopen();
        } catch {
          // a failed resume leaves the socket up, signed out; the app shows the login form
        }
        for (const [id, sub] of this.subs) this.send({ msg: 'sub', id, name: sub.name, params: sub.params });
        this.setState('connected');
        break;
      case 'ping':
        this.send(frame.id ? { msg: 'pong', id: frame.id } : { msg: 'pong' });
        break;
      case 'result': {
        const call = this.pending.get(frame.id);
        if (!call) break;
        this.pending.delete(frame.id);
        if (frame.error) call.reject(Object.assign(new Error(frame.error.reason || frame.error.message || String(frame.error.error)), { ddp: frame.error }));
        else call.resolve(frame.result);
        break;
      }
      case 'changed': {
        if (frame.collection === 'stream-user-presence') {
          const [username, status, text] = frame.fields?.args?.[0] || [];
          this.onpresence(frame.fields?.uid || frame.id, username, status, text);
          break;
        }
        const eventName = frame.fields?.eventName;
        for (const sub of this.subs.values()) {
          if (sub.name === frame.collection && sub.params[0] === eventName) sub.onEvent(frame.fields.args || []);
        }
        break;
      }
      case 'ready':
        for (const id of frame.subs || []) {
          const sub = this.subs.get(id);
          if (sub) sub.ready = true;
        }
        break;
      case 'nosub':
        this.subs.delete(frame.id);
        break;
      default:
        break;
    }
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  /** Calls a method; rejects with the server's reason, or `offline` when there is no connection. */
  call(method, ...params) {
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
        reject(Object.assign(new Error('Not connected to the server'), { offline: true }));
        return;
      }
      this.pending.set(id, { resolve, reject });
      this.send({ msg: 'method', method, params, id });
    });
  }

  /** Subscribes to a stream event; kept across reconnects until the returned function is called. */
  subscribe(name, eventName, onEvent) {
    const id = 's' + this.nextId++;
    const params = [eventName, { useCollection: false, args: [] }];
    this.subs.set(id, { name, params, onEvent, ready: false });
    this.send({ msg: 'sub', id, name, params });
    return () => {
      if (this.subs.delete(id)) this.send({ msg: 'unsub', id });
    };
  }

  /** A one-off Meteor sub with raw params (presence changes its watched set this way). */
  rawSub(name, params) {
    const id = 's' + this.nextId++;
    this.send({ msg: 'sub', id, name, params });
  }
}

/** SHA-256 of the password, hex: Rocket.Chat's `{digest, algorithm: 'sha-256'}` login. */
export async function passwordDigest(password) {
  const bytes = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(password));
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}
