#!/usr/bin/env python3
"""pyhost.py: a small packer stdio host written in Python from SPEC.md alone (standard library only).

Usage: python3 pyhost.py [options] PLUGIN-BINARY

It launches the plugin (magic cookie, own process group), handshakes and checks the answer, lists the
components, prepares and runs a builder while serving its callbacks (ui/* notifications, ui/ask, hook/run),
post-processes the artifact, runs a second builder instance that waits and cancels it with
$/cancelRequest expecting -32006, and shuts the plugin down (shutdown, close stdin, SIGTERM, SIGKILL).

hook/run packer_provision is answered by running a provisioner in a SECOND process of the same plugin and
relaying its communicator/* and stream/* calls to the builder (SPEC §7.7) when --provisioner is given and the
builder offers a communicator; otherwise it is answered with null.

The host is strict (SPEC §4.3): any malformed line from a plugin ends the session. Exit status 0 means
everything went as the protocol says; any surprise prints "FAIL: ..." and exits 1.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

MAGIC_COOKIE = ("PACKER_PLUGIN_MAGIC_COOKIE", "d7a0b3c1e6f54c2a9b8e1f0a3c5d7e9f-stdio-jsonrpc")
PROTOCOL_VERSIONS = [1]
MAX_MESSAGE_SIZE = 4194304
MAX_ID = 2**63 - 1
COMPONENT_TYPES = ("builder", "provisioner", "post-processor", "datasource")
SHUTDOWN_GRACE = 2.0
KILL_GRACE = 2.0
CANCEL_GRACE = 5.0

CANCELLED = -32006
UNKNOWN_HANDLE = -32005
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

    def __init__(self, argv, label, handlers=None):
        self.label = label
        self.handlers = handlers or {}
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
        data = dumps(msg).encode("utf-8")
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
        while True:
            raw = self.proc.stdout.readline(MAX_MESSAGE_SIZE + 2)
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
        else:
            sys.stderr.write("pyhost: ignoring notification %s from %s\n" % (method, self.label))

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
        res = self.call("initialize", {
            "protocol_versions": PROTOCOL_VERSIONS, "host": {"name": "pyhost", "version": "0.1.0"},
            "limits": {"max_message_size": MAX_MESSAGE_SIZE}, "capabilities": {"ask": True, "progress": True},
        }, timeout=10)
        if not isinstance(res, dict):
            raise Surprise("initialize answered %r" % (res,))
        if res.get("protocol_version") not in PROTOCOL_VERSIONS:
            raise Surprise("plugin chose protocol %r, this host offered %s" % (res.get("protocol_version"),
                                                                               PROTOCOL_VERSIONS))
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


class Relay:
    """Relay serves a builder's hook/run by provisioning through a second plugin process (SPEC §7.7)."""

    def __init__(self, argv, provisioner, cfg, builder_type):
        self.argv = argv
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
        prov = Plugin(self.argv, "provisioner", {})
        streams = {}  # host handle on B's connection -> P's stream handle

        def forward_stream(method):
            def handler(p, _cancel):
                theirs = streams.get(p.get("stream"))
                if theirs is None:
                    raise RPCError(UNKNOWN_HANDLE, "unknown handle: no stream %s" % dumps(p.get("stream")))
                return prov.call(method, dict(p, stream=theirs))
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
                for key in ("stdin", "stdout", "stderr", "source", "sink"):
                    if q.get(key):
                        h = self.mint("s")
                        streams[h] = q[key]
                        mine.append(h)
                        q[key] = h
                try:
                    return self.builder.call(method, q, cancel=pcancel)
                finally:
                    for h in mine:
                        streams.pop(h, None)
            return handler

        for m in ("communicator/start", "communicator/upload", "communicator/download",
                  "communicator/uploadDir", "communicator/downloadDir"):
            prov.handlers[m] = forward_comm(m)
        try:
            prov.handshake()
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
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="pyhost-")
    cfg = json.loads(args.config) if args.config else {"output": os.path.join(work, "out"),
                                                       "content": "hello from pyhost\n"}
    cancel_cfg = (json.loads(args.cancel_config) if args.cancel_config
                  else {"output": os.path.join(work, "cancelled"), "wait": "1m"})

    relay = Relay([args.provisioner_plugin] if args.provisioner_plugin else args.plugin, args.provisioner, json.loads(args.provisioner_config), args.builder)

    def ask(params, cancel):
        say("ui/ask %r: answering y" % params.get("query"))
        return {"answer": "y"}

    plugin = Plugin(args.plugin, "builder", {"ui/ask": ask, "hook/run": relay.hook_run})
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
    say("OK" if status == 0 else "FAILED")
    return status


if __name__ == "__main__":
    sys.exit(main())
