#!/usr/bin/env python3
"""pyhost.py: a small packer stdio host written in Python from SPEC.md alone (standard library only).

Usage: python3 pyhost.py [options] PLUGIN-BINARY

It launches the plugin (magic cookie, own process group), handshakes and checks the answer, lists the
components, prepares and runs a builder while serving its callbacks (ui/* notifications, ui/ask, hook/run),
post-processes the artifact, runs a second builder instance that waits and cancels it with
$/cancelRequest expecting -32006, and shuts the plugin down (shutdown, close stdin, SIGTERM, SIGKILL).

hook/run packer_provision is answered by running a provisioner in a SECOND process of the same plugin and
relaying its communicator/* calls and their streams to the builder (SPEC §7.7) when --provisioner is given and
the builder offers a communicator; otherwise it is answered with null.

It offers protocol versions [2, 1] (--versions and --provisioner-versions change the offer) and relays streams
across every mix of the versions the two plugins chose: between two version 2 connections it forwards each
stream/data, stream/credit, stream/end and stream/cancel with only the handle rewritten (SPEC §7.7 step 4);
when one side uses version 1 it reads on one side and writes on the other, one chunk at a time.

The host is strict (SPEC §4.3): any malformed line from a plugin ends the session. Exit status 0 means
everything went as the protocol says; any surprise prints "FAIL: ..." and exits 1.
"""

import argparse
import base64
import binascii
import collections
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

MAGIC_COOKIE = ("PACKER_PLUGIN_MAGIC_COOKIE", "d7a0b3c1e6f54c2a9b8e1f0a3c5d7e9f-stdio-jsonrpc")
PROTOCOL_VERSIONS = [2, 1]
FLOW_VERSION = 2  # from this version on, streams are pushed under credit (SPEC §7.5.2)
MAX_CHUNK_SIZE = 262144
INITIAL_SINK_WINDOW = 262144
MAX_CREDIT = 2**30
MAX_MESSAGE_SIZE = 4194304
MAX_ID = 2**63 - 1
COMPONENT_TYPES = ("builder", "provisioner", "post-processor", "datasource")
SHUTDOWN_GRACE = 2.0
KILL_GRACE = 2.0
CANCEL_GRACE = 5.0

CANCELLED = -32006
UNKNOWN_HANDLE = -32005
COMPONENT_FAILED = -32007
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
UNSUPPORTED = -32011


class Surprise(Exception):
    """Surprise is a protocol surprise: the host reports it and exits non-zero."""


class RPCError(Exception):
    """RPCError is an error answer: code, message and data as received (relayed unchanged, SPEC §4.2)."""

    def __init__(self, code, message, data=None):
        super().__init__("%d %s" % (code, message))
        self.code = code
        self.message = message
        self.data = data

    def to_json(self):
        err = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


_print_lock = threading.Lock()

# A stream/data line in the canonical form of SPEC §7.5.2, recognised without a JSON parser.
DATA_PREFIX = b'{"jsonrpc":"2.0","method":"stream/data","params":{"'
DATA_LINE = re.compile(rb'\{"jsonrpc":"2\.0","method":"stream/data","params":\{"(source|sink)":'
                       rb'"([\x20\x21\x23-\x5b\x5d-\x7e]+)","data":"([A-Za-z0-9+/=]*)"\}\}')
FLOW_MEMBERS = {"stream/data": "data", "stream/credit": "bytes", "stream/end": "error", "stream/cancel": "error"}


def flow_problem(method, params):
    """flow_problem returns what is wrong with the params of a version 2 stream notification, or None."""
    if not isinstance(params, dict):
        return "params must be an object"
    refs = [k for k in ("source", "sink") if k in params]
    if len(refs) != 1 or not isinstance(params[refs[0]], str) or not params[refs[0]]:
        return "exactly one of source and sink, a non-empty string, is required"
    extra = set(params) - {"source", "sink", FLOW_MEMBERS[method]}
    if extra:
        return "unknown member %s" % sorted(extra)[0]
    if method == "stream/data" and not isinstance(params.get("data"), str):
        return "data must be a string"
    if method == "stream/credit":
        n = params.get("bytes")
        if type(n) is not int or not 1 <= n <= MAX_CREDIT:
            return "bytes must be an integer from 1 to %d" % MAX_CREDIT
    if "error" in params:
        err = params["error"]
        if not (isinstance(err, dict) and type(err.get("code")) is int and isinstance(err.get("message"), str)
                and not set(err) - {"code", "message", "data"}):
            return "error must be an error object"
    return None


def say(text):
    with _print_lock:
        print(text, flush=True)


def dumps(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class Pending:
    def __init__(self, method):
        self.method = method
        self.done = threading.Event()
        self.result = None
        self.error = None


class Plugin:
    """Plugin is one plugin process and the connection to it.

    Requests from the plugin are served on a thread each by handlers[method](params, cancel_event); ui/*
    notifications are printed in order. The first malformed line ends the session (strict host).
    """

    def __init__(self, argv, label, handlers=None, versions=None):
        self.label = label
        self.handlers = handlers or {}
        self.versions = list(versions or PROTOCOL_VERSIONS)
        self.version = None  # chosen by the plugin in the handshake
        self.flow = {}  # version 2 streams relayed on this connection: (kind, handle) -> Bridge
        env = dict(os.environ)
        env[MAGIC_COOKIE[0]] = MAGIC_COOKIE[1]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, start_new_session=True, bufsize=0)
        self.lock = threading.Lock()
        self.wlock = threading.Lock()
        self.next_id = 0
        self.pending = {}
        self.inflight = {}  # the plugin's requests being served: id -> cancel event
        self.peer_limit = MAX_MESSAGE_SIZE
        self.violation = None
        self.closed = threading.Event()
        self.stderr_tail = []
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    # -- output

    def _write(self, msg):
        self._write_line(dumps(msg).encode("utf-8"))

    def send_data(self, kind, handle, payload):
        """send_data writes a stream/data line in the canonical form; payload is the base64 text, as bytes,
        passed on untouched (SPEC §7.7 step 4)."""
        self._write_line(b'{"jsonrpc":"2.0","method":"stream/data","params":{"' + kind.encode("ascii") + b'":'
                         + dumps(handle).encode("ascii") + b',"data":"' + payload + b'"}}')

    def _write_line(self, data):
        if len(data) > self.peer_limit:
            raise RPCError(-32009, "message too large: %d bytes exceed the plugin's limit" % len(data))
        with self.wlock:
            try:
                self.proc.stdin.write(data + b"\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass

    def notify(self, method, params):
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def start_call(self, method, params=None):
        with self.lock:
            self.next_id += 1
            cid = self.next_id
            p = Pending(method)
            self.pending[cid] = p
        msg = {"jsonrpc": "2.0", "id": cid, "method": method}
        if params is not None:
            msg["params"] = params
        if self.closed.is_set():
            self._fail(p)
        self._write(msg)
        return cid, p

    def wait(self, cid, p, timeout=None, cancel=None):
        """wait blocks until the answer to request cid; when cancel is set first it sends $/cancelRequest
        and keeps waiting CANCEL_GRACE for the answer (SPEC §8)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        cancelled = False
        interrupted = False
        while True:
            try:
                if p.done.wait(0.05):
                    break
            except KeyboardInterrupt:
                # Ctrl-C: the host abandons the call, so it cancels it and waits for the answer (SPEC §8).
                say("interrupted: cancelling %s (id %d)" % (p.method, cid))
                interrupted = True
            if (interrupted or (cancel is not None and cancel.is_set())) and not cancelled:
                cancelled = True
                self.notify("$/cancelRequest", {"id": cid})
                deadline = time.monotonic() + CANCEL_GRACE
            if deadline is not None and time.monotonic() > deadline:
                raise Surprise("%s: no answer to %s (id %d) in time" % (self.label, p.method, cid))
        if interrupted:
            with self.lock:
                self.pending.pop(cid, None)
            raise Surprise("interrupted; %s (id %d) answered after its cancellation" % (p.method, cid))
        with self.lock:
            self.pending.pop(cid, None)
        if p.error is not None:
            raise RPCError(p.error["code"], p.error["message"], p.error.get("data"))
        return p.result

    def call(self, method, params=None, timeout=None, cancel=None):
        cid, p = self.start_call(method, params)
        return self.wait(cid, p, timeout, cancel)

    # -- input

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.stderr_tail = (self.stderr_tail + [line[:512]])[-20:]
            sys.stderr.write("%s: %s\n" % (self.label, line))

    def _fatal(self, why, raw):
        if self.violation is None:
            self.violation = "protocol violation: %s: %r" % (why, raw[:200])
            say("FAIL: %s: %s" % (self.label, self.violation))
            self.kill_group(signal.SIGKILL)

    def _fail(self, p):
        p.error = {"code": -32603, "message": "%s is gone: %s" % (self.label, self.violation or "end of file")}
        p.done.set()

    def _read_stdout(self):
        # The pipe is unbuffered (bufsize=0, so that writes go out at once); read it through a buffer, or
        # readline would take one byte per system call.
        out = io.BufferedReader(self.proc.stdout, 1 << 16)
        while True:
            raw = out.readline(MAX_MESSAGE_SIZE + 2)
            if not raw:
                break
            if not raw.endswith(b"\n") and len(raw) > MAX_MESSAGE_SIZE:
                self._fatal("line over %d bytes" % MAX_MESSAGE_SIZE, raw)
                break
            line = raw.rstrip(b"\n")
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                continue
            if self.version == FLOW_VERSION and line.startswith(DATA_PREFIX):
                m = DATA_LINE.fullmatch(line)
                if m is not None:  # canonical stream/data: routed without a JSON parser (SPEC §7.5.2)
                    self._on_flow("stream/data", (m.group(1).decode(), m.group(2).decode()), None, m.group(3))
                    continue
            try:
                msg = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                self._fatal("not JSON", line)
                break
            if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
                self._fatal("not a JSON-RPC 2.0 object", line)
                break
            if "method" in msg and ("result" in msg or "error" in msg):
                self._fatal("method together with result or error", line)
                break
            if "method" in msg:
                if not self._on_message(msg, line):
                    break
                continue
            if ("result" in msg) == ("error" in msg):
                self._fatal("a response must have exactly one of result and error", line)
                break
            with self.lock:
                p = self.pending.get(msg.get("id")) if type(msg.get("id")) is int else None
            if p is None:
                self._fatal("response to no request in flight", line)
                break
            err = msg.get("error")
            if err is not None and not (isinstance(err, dict) and type(err.get("code")) is int
                                        and isinstance(err.get("message"), str)):
                self._fatal("malformed error object", line)
                break
            p.result, p.error = msg.get("result"), err
            p.done.set()
        self.closed.set()
        with self.lock:
            for p in list(self.pending.values()):
                if not p.done.is_set():
                    self._fail(p)
            for ev in self.inflight.values():
                ev.set()
            bridges = list(self.flow.values())
        for bridge in bridges:  # nothing more will arrive for the streams relayed on this connection
            bridge.gone(self)

    def _on_message(self, msg, line):
        method, params = msg["method"], msg.get("params")
        if "id" not in msg:
            self._on_notification(method, params)
            return True
        rid = msg["id"]
        if not (isinstance(rid, str) or (type(rid) is int and 0 <= rid <= MAX_ID)):
            self._fatal("invalid request id", line)
            return False
        ev = threading.Event()
        with self.lock:
            self.inflight[(type(rid).__name__, rid)] = ev
        threading.Thread(target=self._serve, args=(rid, method, params, ev), daemon=True).start()
        return True

    def _on_notification(self, method, params):
        params = params if isinstance(params, dict) else {}
        if method == "ui/say":
            say("%s ==> %s" % (self.label, params.get("message")))
        elif method == "ui/message":
            say("%s     %s" % (self.label, params.get("message")))
        elif method == "ui/error":
            say("%s !!  %s" % (self.label, params.get("message")))
        elif method == "ui/machine":
            say("%s machine: %s %s" % (self.label, params.get("type"), ",".join(params.get("data", []))))
        elif method == "ui/progress":
            say("%s progress %s %s %s/%s" % (self.label, params.get("id"), params.get("state"),
                                            params.get("current"), params.get("total")))
        elif method == "$/cancelRequest":
            with self.lock:
                ev = self.inflight.get((type(params.get("id")).__name__, params.get("id")))
            if ev is not None:
                ev.set()
        elif method in FLOW_MEMBERS and self.version == FLOW_VERSION:
            problem = flow_problem(method, params)
            if problem is not None:
                sys.stderr.write("pyhost: %s from %s: %s: ignored\n" % (method, self.label, problem))
                return
            kind = "source" if "source" in params else "sink"
            payload = params["data"].encode("ascii", "replace") if method == "stream/data" else None
            self._on_flow(method, (kind, params[kind]), params, payload)
        else:
            sys.stderr.write("pyhost: ignoring notification %s from %s\n" % (method, self.label))

    def _on_flow(self, method, key, params, payload):
        """_on_flow hands a version 2 stream notification to the bridge of its stream, on the read loop;
        one for a stream that is not (or no longer) relayed is dropped, as SPEC §7.5.2 rule 3 says."""
        with self.lock:
            bridge = self.flow.get(key)
        if bridge is None:
            sys.stderr.write("pyhost: %s for %s %s from %s, which is not open: dropped\n"
                             % (method, key[0], key[1], self.label))
            return
        bridge.on_flow(self, method, params or {}, payload)

    def _serve(self, rid, method, params, cancel):
        handler = self.handlers.get(method)
        try:
            if handler is None and method.startswith(("communicator/", "stream/")):
                # No communicator or stream handle is valid on this connection now (SPEC §7.6).
                raise RPCError(UNKNOWN_HANDLE, "unknown handle: %s" % dumps(params))
            if handler is None:
                raise RPCError(METHOD_NOT_FOUND, "method not found: %s" % method)
            answer = {"jsonrpc": "2.0", "id": rid, "result": handler(params, cancel)}
        except RPCError as e:
            answer = {"jsonrpc": "2.0", "id": rid, "error": e.to_json()}
        except Exception as e:  # a bug in this host: answer and go on
            answer = {"jsonrpc": "2.0", "id": rid, "error": {"code": -32603, "message": "internal error: %s" % e}}
        with self.lock:
            self.inflight.pop((type(rid).__name__, rid), None)
        try:
            self._write(answer)
        except RPCError as e:
            self._write({"jsonrpc": "2.0", "id": rid, "error": e.to_json()})

    # -- lifecycle

    def handshake(self):
        """handshake sends initialize and checks the answer as SPEC §5.1 says; it returns the result."""
        try:
            res = self.call("initialize", {
                "protocol_versions": self.versions, "host": {"name": "pyhost", "version": "0.1.0"},
                "limits": {"max_message_size": MAX_MESSAGE_SIZE}, "capabilities": {"ask": True, "progress": True},
            }, timeout=10)
        except RPCError as e:
            if e.code != -32002:
                raise
            supported = e.data.get("supported") if isinstance(e.data, dict) else None
            raise Surprise("the %s plugin speaks protocol versions %s, this host offers %s: use a build of the "
                           "plugin for one of these versions, or offer one of the plugin's (--versions, "
                           "--provisioner-versions)" % (self.label, supported, self.versions))
        if not isinstance(res, dict):
            raise Surprise("initialize answered %r" % (res,))
        if type(res.get("protocol_version")) is not int or res["protocol_version"] not in self.versions:
            raise Surprise("plugin chose protocol %r, this host offered %s" % (res.get("protocol_version"),
                                                                               self.versions))
        limit = res.get("limits", {}).get("max_message_size")
        if type(limit) is not int or limit < 1048576:
            raise Surprise("plugin declares max_message_size %r, below 1048576" % (limit,))
        self.peer_limit = limit
        seen = set()
        for c in res.get("components", []):
            key = (c.get("type"), c.get("name"))
            if key[0] not in COMPONENT_TYPES:
                raise Surprise("component %r has an invalid type" % (key,))
            if key in seen:
                raise Surprise("component %s %s is listed twice" % key)
            if not isinstance(c.get("config_schema"), dict):
                raise Surprise("component %s %s has no config_schema object" % key)
            if (key[0] == "datasource") != isinstance(c.get("output_schema"), dict):
                raise Surprise("component %s %s: a data source, and only a data source, has an output_schema "
                               "(SPEC 6.7)" % key)
            seen.add(key)
        self.version = res["protocol_version"]
        return res

    def kill_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self):
        """stop ends the session as SPEC §9.3 says and returns the exit status."""
        steps = []
        if self.proc.poll() is None and not self.closed.is_set():
            try:
                self.call("shutdown", timeout=SHUTDOWN_GRACE)
                steps.append("shutdown answered null")
            except (Surprise, RPCError) as e:
                steps.append("shutdown: %s" % e)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        steps.append("stdin closed")
        for sig, grace in ((None, SHUTDOWN_GRACE), (signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
            if sig is not None:
                steps.append("sent %s" % sig.name)
                self.kill_group(sig)
            try:
                self.proc.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
        self.kill_group(signal.SIGKILL)  # children that may hold the pipes open
        self.proc.stdout.close()
        say("%s: %s; exit status %d" % (self.label, ", ".join(steps), self.proc.returncode))
        return self.proc.returncode


def packer_keys(builder_type):
    return {"packer_build_name": "pyhost", "packer_builder_type": builder_type, "packer_debug": False,
            "packer_force": False, "packer_on_error": "cleanup", "packer_user_variables": {},
            "packer_sensitive_variables": []}


def prepare(plugin, ctype, name, cfg, builder_type):
    try:
        res = plugin.call("component/prepare", {"type": ctype, "name": name,
                                                "configs": [cfg, packer_keys(builder_type)]}, timeout=30)
    except RPCError as e:
        raise Surprise("prepare %s %s: %s %s" % (ctype, name, e, dumps(e.data) if e.data else ""))
    say("prepared %s %s: instance %s, warnings %s" % (ctype, name, res["instance"], res.get("warnings")))
    return res["instance"]


def _b64(data):
    return base64.b64encode(data).decode("ascii")


class Bridge:
    """Bridge relays one stream of a provisioner's communicator request to the builder (SPEC §7.7).

    The provisioner P offered the stream under its handle hp; the host offers the same kind of stream to
    the builder B under its own handle hb. A source carries bytes from P to B, a sink from B to P. How the
    bytes move depends on the versions the two connections use:

      2 and 2  each notification is forwarded with the handle rewritten: data and end from the sender's
               side, credit and cancel from the receiver's; the host holds no chunk, and B's window is P's.
      1 and 1  B's stream/read, stream/write and stream/close become the same request on P's stream.
      P 2, B 1 a source: B's stream/read grants P one chunk of credit and answers with what arrives; a
               sink: B's stream/write is sent to P as stream/data within P's credit, stream/close as
               stream/end.
      P 1, B 2 a source: B's credit drives stream/read on P, each chunk going on as stream/data; a sink:
               each chunk B sends is written to P with stream/write, and its bytes credited back to B
               once P accepted them; stream/end becomes stream/close.

    In every mix the host holds at most one chunk per stream. Notifications arrive on a connection's read
    loop (on_flow); B's version 1 requests on a thread each (b_read, b_write, b_close). settle runs after B
    answered and before P is answered: it ends what is still open on P's side (SPEC §7.5.2 rule 5).
    """

    def __init__(self, kind, prov, hp, builder, hb):
        self.kind, self.prov, self.hp, self.builder, self.hb = kind, prov, hp, builder, hb
        self.pv, self.bv = prov.version, builder.version
        self.cond = threading.Condition()
        self.finished = False  # P's side is settled: its end passed, or the host cancelled or ended it
        self.closed = False  # the host stopped B's side: released, or B cancelled
        self.released = False  # B answered: what B sent is all there will be
        # P's source read in version 2 for a version 1 B: one chunk at a time.
        self.buf = b""
        self.outstanding = 0  # credit granted to P and not used yet
        self.p_ended = False
        self.p_error = None
        # P's version 1 source pushed to a version 2 B: credit left, and the pump thread.
        self.credit = 0
        self.pump = None
        # B's version 1 writes to P's version 2 sink: P's credit and cancel.
        self.p_credit = INITIAL_SINK_WINDOW
        self.p_cancel = None  # error object, or {} for a cancel without error
        # B's version 2 writes to P's version 1 sink: chunks waiting for stream/write, and B's end.
        self.queue = collections.deque()
        self.b_credit = INITIAL_SINK_WINDOW
        self.b_end = None  # None, or {"error": ...} once B's stream/end arrived
        self.writer = None
        self.write_error = None
        if self.pv == FLOW_VERSION:
            with prov.lock:
                prov.flow[(kind, hp)] = self
        if self.bv == FLOW_VERSION:
            with builder.lock:
                builder.flow[(kind, hb)] = self
        if self.pv != FLOW_VERSION and self.bv == FLOW_VERSION and kind == "sink":
            self.writer = threading.Thread(target=self._write_p1, daemon=True)
            self.writer.start()

    def _ref(self, side):
        return {self.kind: self.hp if side is self.prov else self.hb}

    def _send(self, side, method, extra=None):
        params = self._ref(side)
        if extra:
            params.update(extra)
        side.notify(method, params)

    # -- notifications, on the read loop of the connection they arrived on

    def on_flow(self, conn, method, params, payload):
        from_p = conn is self.prov
        sender = (from_p and self.kind == "source") or (not from_p and self.kind == "sink")
        if sender != (method in ("stream/data", "stream/end")):
            sys.stderr.write("pyhost: %s for %s %s from %s, which does not send it: ignored\n"
                             % (method, self.kind, params.get(self.kind), conn.label))
            return
        error = {"error": params["error"]} if "error" in params else None
        other = self.builder if from_p else self.prov
        if self.pv == FLOW_VERSION and self.bv == FLOW_VERSION:
            # Both connections use version 2: forward with the handle rewritten.
            if self.finished:
                return
            if method == "stream/data":
                other.send_data(self.kind, self.hb if other is self.builder else self.hp, payload)
                return
            if method in ("stream/end", "stream/cancel"):
                self.finished = True
            extra = {"bytes": params["bytes"]} if method == "stream/credit" else error
            self._send(other, method, extra)
            return
        with self.cond:
            if method == "stream/data":
                self._on_data(conn, payload)
            elif method == "stream/end" and from_p:  # P's version 2 source, read for B's stream/read
                self.p_ended, self.p_error = True, params.get("error")
            elif method == "stream/end":  # B's version 2 sink, written to P with stream/write
                self.b_end = params
            elif method == "stream/credit" and from_p:  # P's sink grants credit for B's stream/write
                self.p_credit += params["bytes"]
            elif method == "stream/credit":  # B reads P's version 1 source
                self.credit += params["bytes"]
                if self.pump is None:
                    self.pump = threading.Thread(target=self._pump_p1, daemon=True)
                    self.pump.start()
            elif from_p:  # P cancelled its sink: B's next stream/write fails
                self.p_cancel = params.get("error", {})
            else:  # B cancelled P's version 1 source: the pump closes it
                self.closed = True
            self.cond.notify_all()

    def _on_data(self, conn, payload):
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            data = None
        if conn is self.prov:  # a chunk of P's source for B's stream/read
            if data is None or len(data) > self.outstanding:
                why = "data is not valid base64" if data is None else "chunk over the credit left"
                self._cancel_p({"code": INVALID_PARAMS, "message": "invalid params: stream/data: " + why})
                return
            self.outstanding -= len(data)
            self.buf += data
            return
        # a chunk of B's sink for P's stream/write
        if self.closed or self.b_end is not None:
            return
        if data is None or len(data) > self.b_credit or len(data) > MAX_CHUNK_SIZE:
            why = "data is not valid base64" if data is None else "chunk over the credit left"
            self.closed = True
            self.queue.clear()
            self.builder.notify("stream/cancel", {"sink": self.hb, "error": {
                "code": INVALID_PARAMS, "message": "invalid params: stream/data: " + why}})
            return
        self.b_credit -= len(data)
        self.queue.append(data)

    def _cancel_p(self, error=None):
        if self.finished:
            return
        self.finished = True
        self._send(self.prov, "stream/cancel", {"error": error} if error else None)

    # -- P uses version 1, B version 2

    def _pump_p1(self):
        """_pump_p1 reads P's version 1 source with stream/read as B grants credit, sending each chunk to B."""
        while True:
            with self.cond:
                while self.credit <= 0 and not self.closed:
                    self.cond.wait()
                if self.closed:
                    break
                want = min(self.credit, MAX_CHUNK_SIZE)
            try:
                res = self.prov.call("stream/read", {"stream": self.hp, "max": want})
                data = base64.b64decode(res["data"], validate=True)
                if len(data) > want:
                    raise RPCError(COMPONENT_FAILED, "component failed: stream/read answered %d bytes, asked %d"
                                   % (len(data), want))
            except (RPCError, binascii.Error, ValueError, KeyError, TypeError) as e:
                err = e.to_json() if isinstance(e, RPCError) else {
                    "code": COMPONENT_FAILED, "message": "component failed: reading the provisioner's stream: %s" % e}
                self.finished = True
                self._send(self.builder, "stream/end", {"error": err})
                return
            with self.cond:
                if self.closed:
                    break
                self.credit -= len(data)
            if data:
                self.builder.send_data("source", self.hb, _b64(data).encode("ascii"))
            if res.get("eof"):
                self.finished = True
                self._send(self.builder, "stream/end")
                return
        if not self.finished:  # B cancelled or the request was answered: let P stop producing
            self.finished = True
            try:
                self.prov.call("stream/close", {"stream": self.hp})
            except RPCError:
                pass

    def _write_p1(self):
        """_write_p1 writes B's chunks to P's version 1 sink with stream/write, crediting B once P took them."""
        while True:
            with self.cond:
                while not self.queue and self.b_end is None and not self.closed and not self.released:
                    self.cond.wait()
                if self.closed:
                    return
                if not self.queue:
                    if self.b_end is None:
                        return  # B answered without ending its sink: P's stays unclosed, incomplete
                    end = self.b_end
                    break
                data = self.queue.popleft()
            try:
                self.prov.call("stream/write", {"stream": self.hp, "data": _b64(data)})
            except RPCError as e:
                with self.cond:
                    self.closed = True
                    self.write_error = e
                    self.queue.clear()
                self.builder.notify("stream/cancel", {"sink": self.hb, "error": e.to_json()})
                return
            with self.cond:
                self.b_credit += len(data)
                ended = self.b_end is not None
            if not ended:
                self.builder.notify("stream/credit", {"sink": self.hb, "bytes": len(data)})
        if "error" not in end:  # B aborted the stream: P's sink stays unclosed, incomplete (§7.5.1)
            try:
                self.prov.call("stream/close", {"stream": self.hp})
            except RPCError as e:
                self.write_error = e
        self.finished = True

    # -- B uses version 1: its requests on the host's stream

    def b_read(self, p):
        if self.kind != "source":
            raise RPCError(INVALID_PARAMS, "invalid params: stream/read: stream %s is a sink" % dumps(self.hb))
        if self.bv == FLOW_VERSION:
            raise RPCError(UNKNOWN_HANDLE, "unknown handle: stream/read: stream %s moves with stream/data in "
                           "protocol version 2 (SPEC §7.5.2 rule 7)" % dumps(self.hb))
        if self.pv != FLOW_VERSION:
            res = self.prov.call("stream/read", dict(p, stream=self.hp))
            if res.get("eof"):
                self.finished = True
            return res
        with self.cond:
            while not self.buf and not self.p_ended and not self.finished:
                if self.outstanding == 0:  # one chunk of credit at a time: the host holds at most that
                    self.outstanding = MAX_CHUNK_SIZE
                    self._send(self.prov, "stream/credit", {"bytes": MAX_CHUNK_SIZE})
                self.cond.wait()
            if self.buf:
                data, self.buf = self.buf[:p["max"]], self.buf[p["max"]:]
                return {"data": _b64(data), "eof": False}
            if self.p_error is not None:
                raise RPCError(self.p_error["code"], self.p_error["message"], self.p_error.get("data"))
            self.finished = True
            return {"data": "", "eof": True}

    def b_write(self, p):
        if self.kind != "sink":
            raise RPCError(INVALID_PARAMS, "invalid params: stream/write: stream %s is a source" % dumps(self.hb))
        if self.bv == FLOW_VERSION:
            raise RPCError(UNKNOWN_HANDLE, "unknown handle: stream/write: stream %s moves with stream/data in "
                           "protocol version 2 (SPEC §7.5.2 rule 7)" % dumps(self.hb))
        if self.pv != FLOW_VERSION:
            return self.prov.call("stream/write", dict(p, stream=self.hp))
        try:
            data = base64.b64decode(p.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            raise RPCError(INVALID_PARAMS, "invalid params: stream/write: data is not base64")
        while data:
            with self.cond:
                while self.p_credit <= 0 and self.p_cancel is None and not self.finished:
                    self.cond.wait()
                if self.p_cancel is not None or self.finished:
                    err = self.p_cancel or {}
                    raise RPCError(err.get("code", COMPONENT_FAILED),
                                   err.get("message", "component failed: the provisioner stopped the stream"),
                                   err.get("data"))
                n = min(self.p_credit, MAX_CHUNK_SIZE, len(data))
                self.p_credit -= n
            self.prov.send_data("sink", self.hp, _b64(data[:n]).encode("ascii"))
            data = data[n:]
        return None

    def b_close(self, p):
        if self.bv == FLOW_VERSION:
            raise RPCError(UNKNOWN_HANDLE, "unknown handle: stream/close: stream %s moves with stream/data in "
                           "protocol version 2 (SPEC §7.5.2 rule 7)" % dumps(self.hb))
        if self.pv != FLOW_VERSION:
            res = self.prov.call("stream/close", dict(p, stream=self.hp))
            self.finished = True
            return res
        with self.cond:
            if self.finished or self.p_ended:
                return None
            self.finished = True
        self._send(self.prov, "stream/cancel" if self.kind == "source" else "stream/end")
        return None

    # -- the end

    def gone(self, conn):
        """gone wakes whatever waits for messages from conn, whose output ended."""
        with self.cond:
            if conn is self.prov:
                err = {"code": COMPONENT_FAILED, "message": "component failed: the provisioner's connection ended"}
                if not self.p_ended:
                    self.p_ended, self.p_error = True, err
                if self.p_cancel is None:
                    self.p_cancel = err
            else:
                self.closed = True
            self.cond.notify_all()

    def settle(self, error):
        """settle runs once B answered: it stops B's side and finishes P's (SPEC §7.5.2 rule 5), with the
        request's error when it failed. It returns the error of writing P's version 1 sink, if any."""
        with self.builder.lock:
            self.builder.flow.pop((self.kind, self.hb), None)
        with self.cond:
            self.released = True
            self.cond.notify_all()
        if self.writer is not None:
            self.writer.join(30)  # chunks B sent before its answer go to P before P is answered
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        if self.pump is not None:
            self.pump.join(30)
        err = error.to_json() if isinstance(error, RPCError) else None
        if self.pv == FLOW_VERSION and not self.finished:
            self.finished = True
            if self.kind == "source" and not self.p_ended:
                self._send(self.prov, "stream/cancel", {"error": err} if err else None)
            elif self.kind == "sink":
                err = err or {"code": COMPONENT_FAILED,
                              "message": "component failed: the builder answered without ending the stream"}
                self._send(self.prov, "stream/end", {"error": err})
        with self.prov.lock:
            self.prov.flow.pop((self.kind, self.hp), None)
        return self.write_error


class Relay:
    """Relay serves a builder's hook/run by provisioning through a second plugin process (SPEC §7.7)."""

    def __init__(self, argv, provisioner, cfg, builder_type, versions=None):
        self.argv = argv
        self.versions = versions
        self.provisioner = provisioner
        self.cfg = cfg
        self.builder_type = builder_type
        self.builder = None  # set once the builder's Plugin exists
        self.comm = {}  # handle minted on P's connection -> builder's communicator handle
        self.counter = 0
        self.lock = threading.Lock()
        self.runs = 0  # builder/run calls in flight: hooks belong to one (SPEC §7.3)
        self.hook_lock = threading.Lock()  # hooks run one at a time (SPEC §6, §7.3)

    def mint(self, prefix):
        with self.lock:
            self.counter += 1
            return "%s%d" % (prefix, self.counter)

    def running(self, delta):
        with self.lock:
            self.runs += delta

    def hook_run(self, params, cancel):
        with self.lock:
            if self.runs == 0:
                raise RPCError(UNKNOWN_HANDLE, "unknown handle: hook/run while no builder/run is in flight")
        with self.hook_lock:
            return self._hook_run(params, cancel)

    def _hook_run(self, params, cancel):
        say("hook/run %s (communicator %r, data %s)" % (params.get("name"), params.get("communicator"),
                                                         dumps(params.get("data"))))
        if params.get("name") != "packer_provision" or not self.provisioner:
            return None
        prov = Plugin(self.argv, "provisioner", {}, versions=self.versions)
        streams = {}  # host handle on B's connection -> Bridge to P's stream

        def forward_stream(method):
            def handler(p, _cancel):
                bridge = streams.get(p.get("stream"))
                if bridge is None:
                    raise RPCError(UNKNOWN_HANDLE, "unknown handle: no stream %s" % dumps(p.get("stream")))
                return getattr(bridge, "b_" + method.split("/")[1])(p)
            return handler

        for m in ("stream/read", "stream/write", "stream/close"):
            self.builder.handlers[m] = forward_stream(m)

        def forward_comm(method):
            def handler(p, pcancel):
                target = self.comm.get(p.get("communicator"))
                if target is None:
                    raise RPCError(UNKNOWN_HANDLE, "unknown handle: no communicator %s" % dumps(p.get("communicator")))
                q = dict(p, communicator=target)
                mine = []
                for key, kind in (("stdin", "source"), ("stdout", "sink"), ("stderr", "sink"),
                                  ("source", "source"), ("sink", "sink")):
                    if q.get(key):
                        h = self.mint("s")
                        streams[h] = Bridge(kind, prov, q[key], self.builder, h)
                        mine.append(h)
                        q[key] = h
                error = None
                try:
                    return self.builder.call(method, q, cancel=pcancel)
                except RPCError as e:
                    error = e
                    raise
                finally:
                    failures = [streams.pop(h).settle(error) for h in mine]
                    failures = [f for f in failures if f is not None]
                    if error is None and failures:
                        raise failures[0]
            return handler

        for m in ("communicator/start", "communicator/upload", "communicator/download",
                  "communicator/uploadDir", "communicator/downloadDir"):
            prov.handlers[m] = forward_comm(m)
        try:
            pres = prov.handshake()
            say("provisioner plugin %s speaks protocol %d (builder: %d)" % (pres["plugin"]["name"], prov.version,
                                                                        self.builder.version))
            inst = prepare(prov, "provisioner", self.provisioner, self.cfg, self.builder_type)
            handle = ""
            if params.get("communicator"):
                handle = self.mint("c")
                self.comm[handle] = params["communicator"]
            try:
                prov.call("provisioner/provision", {"instance": inst, "communicator": handle,
                                                    "data": params.get("data", {})}, cancel=cancel)
            finally:
                self.comm.pop(handle, None)
            say("provisioner %s done" % self.provisioner)
            return None
        finally:
            if prov.stop() != 0:
                raise RPCError(-32007, "component failed: provisioner process did not exit 0")


def main():
    ap = argparse.ArgumentParser(description="A small packer stdio host in Python.")
    ap.add_argument("plugin", nargs="+", help="plugin command line")
    ap.add_argument("--builder", default="example")
    ap.add_argument("--config", help="builder config (JSON object); default writes into a temporary directory")
    ap.add_argument("--cancel-config", help="config of the builder run that is cancelled (JSON object)")
    ap.add_argument("--provisioner", default="", help="provisioner to relay hook/run to, e.g. example-shell")
    ap.add_argument("--provisioner-config", default="{}")
    ap.add_argument("--provisioner-plugin", help="plugin binary serving the provisioner; default: PLUGIN")
    ap.add_argument("--post-processor", default="", help="post-processor to run on the artifact")
    ap.add_argument("--post-processor-config", default="{}")
    ap.add_argument("--datasource", default="", help="data source to execute before the build")
    ap.add_argument("--datasource-config", default="{}")
    ap.add_argument("--versions", default="2,1", help="protocol versions offered to the builder's plugin")
    ap.add_argument("--provisioner-versions", default="2,1",
                    help="protocol versions offered to the provisioner's plugin")
    args = ap.parse_args()

    def versions(text):
        try:
            vs = [int(v) for v in text.split(",")]
        except ValueError:
            ap.error("versions must be a comma-separated list of integers, got %r" % text)
        if not vs or any(v < 1 for v in vs):
            ap.error("versions must be positive integers, got %r" % text)
        return vs

    work = tempfile.mkdtemp(prefix="pyhost-")
    cfg = json.loads(args.config) if args.config else {"output": os.path.join(work, "out"),
                                                       "content": "hello from pyhost\n"}
    cancel_cfg = (json.loads(args.cancel_config) if args.cancel_config
                  else {"output": os.path.join(work, "cancelled"), "wait": "1m"})

    relay = Relay([args.provisioner_plugin] if args.provisioner_plugin else args.plugin, args.provisioner,
                  json.loads(args.provisioner_config), args.builder, versions(args.provisioner_versions))

    def ask(params, cancel):
        say("ui/ask %r: answering y" % params.get("query"))
        return {"answer": "y"}

    plugin = Plugin(args.plugin, "builder", {"ui/ask": ask, "hook/run": relay.hook_run}, versions(args.versions))
    relay.builder = plugin
    status = 1
    try:
        res = plugin.handshake()
        say("plugin %s %s speaks protocol %d, accepts lines up to %d bytes, cancel=%s" % (
            res["plugin"]["name"], res["plugin"]["version"], res["protocol_version"],
            res["limits"]["max_message_size"], res["capabilities"]["cancel"]))
        for c in res["components"]:
            say("  component %-15s %s" % (c["type"], c["name"]))

        if args.datasource:
            # Data sources get no packer_* keys (SPEC 6.7).
            try:
                dres = plugin.call("component/prepare", {"type": "datasource", "name": args.datasource,
                                                         "configs": [json.loads(args.datasource_config)]}, timeout=30)
                out = plugin.call("datasource/execute", {"instance": dres["instance"]}, timeout=30)
            except RPCError as e:
                raise Surprise("datasource %s: %s" % (args.datasource, e))
            if not isinstance(out.get("output"), dict):
                raise Surprise("datasource/execute answered %s, want {\"output\": OBJECT}" % dumps(out))
            say("datasource %s: output %s" % (args.datasource, dumps(out["output"])))

        inst = prepare(plugin, "builder", args.builder, cfg, args.builder)
        relay.running(1)
        try:
            art = plugin.call("builder/run", {"instance": inst}, timeout=120)["artifact"]
        except RPCError as e:
            raise Surprise("builder/run: %s" % e)
        finally:
            relay.running(-1)
        if art is None:
            raise Surprise("builder/run produced no artifact")
        say("artifact %s: %s (files %s)" % (art.get("handle"), art["string"], art["files"]))

        if args.post_processor:
            pinst = prepare(plugin, "post-processor", args.post_processor,
                            json.loads(args.post_processor_config), args.builder)
            given = {k: v for k, v in art.items() if k != "handle"}  # handles are per connection (SPEC §6.4)
            try:
                pres = plugin.call("postprocessor/postprocess", {"instance": pinst, "artifact": given}, timeout=120)
            except RPCError as e:
                raise Surprise("postprocessor/postprocess: %s" % e)
            part = pres["artifact"]
            say("post-processed: %s (keep=%s, force_override=%s)" % (
                part["string"] if part else None, pres["keep"], pres["force_override"]))
            if part and part.get("handle"):
                plugin.call("artifact/destroy", {"artifact": part["handle"]}, timeout=30)
                say("destroyed artifact %s" % part["handle"])
                try:
                    plugin.call("artifact/destroy", {"artifact": part["handle"]}, timeout=30)
                    say("second destroy of %s answered null (allowed)" % part["handle"])
                except RPCError as e:
                    if e.code != UNKNOWN_HANDLE:
                        raise Surprise("second artifact/destroy: %s, want -32005 or null" % e)
                    say("second destroy of %s: %d (handle released)" % (part["handle"], e.code))

        inst2 = prepare(plugin, "builder", args.builder, cancel_cfg, args.builder)
        cid, p = plugin.start_call("builder/run", {"instance": inst2})
        p.done.wait(1.0)  # let it start its wait
        if p.done.is_set():
            raise Surprise("the run to cancel finished before it was cancelled")
        say("cancelling builder/run id %d" % cid)
        plugin.notify("$/cancelRequest", {"id": cid})
        try:
            plugin.wait(cid, p, timeout=CANCEL_GRACE + 1)
            raise Surprise("the cancelled builder/run answered a result, want -32006")
        except RPCError as e:
            if e.code != CANCELLED:
                raise Surprise("the cancelled builder/run answered %s, want -32006" % e)
            say("cancelled run answered %d: %s" % (e.code, e.message))
        status = 0
    except Surprise as e:
        say("FAIL: %s" % e)
    except RPCError as e:
        say("FAIL: unexpected error %s" % e)
    finally:
        if plugin.violation:
            status = 1
        code = plugin.stop()
        if code != 0:
            say("FAIL: plugin exited with status %d" % code)
            status = 1
        # The default configurations' outputs live here; nothing outlives the run.
        shutil.rmtree(work, ignore_errors=True)
    say("OK" if status == 0 else "FAILED")
    return status


if __name__ == "__main__":
    sys.exit(main())
