"""The judge's end of the channel: proxies for the kernel's objects, and the connection.

A check written for in-process objects works unchanged on these proxies:

- :class:`RemoteObject` stands for a class, instance or function of the kernel's: reading
  an attribute and calling are requests to the kernel;
- :class:`RemoteDict` is a real ``dict`` holding a snapshot of one of the kernel's dicts
  (``layer.params``), whose item assignments are also made in the kernel;
- arrays come back by value; an argument the student's code changed in place is changed
  in the judge's copy too, and a result that views an argument (``as_strided``) is rebuilt
  as a view of the judge's own argument, so ``np.shares_memory`` and the values it holds
  are the judge's to check;
- an exception in the kernel comes back as :class:`StudentError` with its type, message
  and line.

The judge's own objects go to the kernel by reference only if they are dicts or declare
``__judge_exposed__`` (the attribute names the kernel may read); everything else is
refused. While the kernel answers a request it may call those objects back (a probe
layer's ``forward``), and :class:`Connection` serves such calls until the answer comes.
"""

from __future__ import annotations

import itertools
import socket
import time
import types
from typing import Any

import numpy as np

from cvcourse.judge_link import (
    ChannelError,
    byte_span,
    decode,
    decode_items,
    encode,
    encode_items,
    keep,
    memory_owner,
    recv_message,
    send_message,
    strided_fits,
)

__all__ = ["ChannelError", "Connection", "RemoteDict", "RemoteObject", "StudentError"]

# The judge never takes arrays this large from the kernel (the checks' own are far smaller).
MAX_BLOB_BYTES = 64 * 2**20
MAX_MESSAGE_BYTES = 128 * 2**20
# Requests the kernel may make of the judge's objects while answering one of ours.
MAX_CALLBACKS = 100_000


class StudentError(Exception):
    """An exception raised by student code in the kernel: its type name, message and line."""

    def __init__(self, remote_type: str, message: str, where: str = ""):
        super().__init__(message)
        self.remote_type = remote_type
        self.where = where


class Delegated(Exception):
    """The kernel's guard saw the call reach a forbidden module (or was switched off)."""

    def __init__(self, call: str, where: str, tampered: bool):
        super().__init__(call)
        self.call, self.where, self.tampered = call, where, tampered


class StudentAttributeError(StudentError, AttributeError):
    """The kernel's object has no such attribute (``getattr(obj, name, default)`` works)."""


class ViewOutsideInput(ValueError):
    """The kernel returned a view whose bytes lie outside the argument it views."""


def _rebuild_view(node: dict, arrays: list[np.ndarray]) -> np.ndarray:
    """The judge's own view for a ``$view`` node: the same offsets into its copy of the input."""
    try:
        arg = arrays[int(node["$view"])]
        dtype = np.dtype(node["dtype"])
        shape = tuple(int(n) for n in node["shape"])
        strides = tuple(int(s) for s in node["strides"])
        offset = int(node["offset"])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ChannelError(f"malformed view: {exc}") from None
    if dtype.kind not in "biufc" or dtype.fields is not None:
        raise ChannelError(f"refused a view of dtype {dtype}")
    owner = memory_owner(arg)
    low, _ = byte_span(arg)
    start = low - owner.__array_interface__["data"][0] + offset
    try:
        if not strided_fits(shape, strides, start, dtype.itemsize, owner.nbytes):
            raise ValueError("outside")
        view = np.ndarray(shape, dtype, buffer=owner, offset=start, strides=strides)
    except (TypeError, ValueError):
        raise ViewOutsideInput(
            f"a view reaching outside x's memory (shape {shape}, strides {strides}; x has "
            f"shape {arg.shape}, strides {arg.strides})"
        ) from None
    view.flags.writeable = False
    return view


def _exposed(obj) -> bool:
    """Whether the judge's ``obj`` declares attributes the kernel may use."""
    return obj is not None and bool(getattr(type(obj), "__judge_exposed__", ()))


def _student_callable(obj) -> bool:
    """A function of the checks' marked ``callable_by_students``."""
    return isinstance(obj, types.FunctionType) and getattr(obj, "__judge_callable__", False)


class RemoteObject:
    """A class, instance, method or function that lives in the kernel."""

    def __init__(self, connection: Connection, ref: int, kind: str):
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_kind", kind)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._connection.request({"op": "getattr", "target": self._ref, "name": name})

    def __setattr__(self, name, value):
        raise TypeError("the judge does not set attributes of student objects")

    def __call__(self, *args, **kwargs):
        return self._connection.call(self._ref, args, kwargs)

    def __repr__(self) -> str:
        return f"<student {self._kind}>"

    @property
    def remote_kind(self) -> str:
        return self._kind


class RemoteDict(dict):
    """A snapshot of one of the kernel's dicts; item assignment also assigns in the kernel."""

    def __init__(self, connection: Connection, ref: int, items: dict):
        super().__init__(items)
        self._connection, self._ref = connection, ref

    def __setitem__(self, key, value):
        self._connection.request({"op": "setitem", "target": self._ref, "key": key}, value=value)
        super().__setitem__(key, value)


class Connection:
    """One accepted connection from the kernel, serving one part, under a deadline."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.deadline = deadline
        self.objects: dict[int, Any] = {}
        self.ids: dict[int, int] = {}
        self.counter = itertools.count(1)
        self.blobs: list[bytes] = []
        self.callbacks = 0
        self.closed = False

    # -- framing under the deadline ----------------------------------------------------------

    def receive(self) -> tuple[dict, list[bytes]]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ChannelError(
                "your code did not answer within the cell's time limit (an endless loop, or "
                "far too slow)"
            )
        self.sock.settimeout(remaining)
        try:
            return recv_message(
                self.sock, max_blob_bytes=MAX_BLOB_BYTES, max_message_bytes=MAX_MESSAGE_BYTES
            )
        except ChannelError as exc:
            if "deadline" in str(exc):
                raise ChannelError(
                    "your code did not answer within the cell's time limit (an endless loop, or "
                    "far too slow)"
                ) from None
            raise

    def send(self, header: dict) -> None:
        blobs, self.blobs = self.blobs, []
        self.sock.settimeout(max(0.1, self.deadline - time.monotonic()))
        send_message(self.sock, header, blobs)

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # -- values --------------------------------------------------------------------------------

    def ref_of(self, obj) -> dict:
        """A reference the kernel may use to one of the judge's objects."""
        if isinstance(obj, RemoteObject):
            return {"$kref": object.__getattribute__(obj, "_ref")}
        if isinstance(obj, RemoteDict):
            return {"$kref": obj._ref}
        if isinstance(obj, dict):
            return {"$jref": self._keep(obj), "kind": "dict"}
        if _exposed(obj) or _exposed(getattr(obj, "__self__", None)) or _student_callable(obj):
            return {"$jref": self._keep(obj), "kind": type(obj).__name__[:64]}
        raise TypeError(f"the judge cannot hand a {type(obj).__name__} to student code")

    def _keep(self, obj) -> int:
        return keep(obj, self.objects, self.ids, self.counter)

    def encode(self, value):
        return encode(value, self.blobs, self.ref_of, keep_layout=True)

    def resolver(self, call_arrays: list[np.ndarray] = ()):
        def resolve(node: dict):
            if "$jref" in node:
                try:
                    return self.objects[int(node["$jref"])]
                except (KeyError, TypeError, ValueError):
                    raise ChannelError("unknown reference to a grader object") from None
            if "$view" in node:
                return _rebuild_view(node, list(call_arrays))
            if "$kref" in node and isinstance(node["$kref"], int):
                if node.get("kind") == "dict":
                    items = decode_items(node.get("items", []), self._blobs_in, resolve)
                    return RemoteDict(self, node["$kref"], items)
                return RemoteObject(self, node["$kref"], str(node.get("kind", "object"))[:64])
            raise ChannelError("malformed value")

        return resolve

    # -- requests ------------------------------------------------------------------------------

    def call(self, ref: int, args: tuple, kwargs: dict, forbid: tuple[str, ...] = ()):
        """Call the kernel's object ``ref``; ``forbid``: modules its code must not reach
        (the kernel's guard reports a call into one as :class:`Delegated`)."""
        request = {"op": "call", "target": ref}
        if forbid:
            request["forbid"] = list(forbid)
        request["args"] = [self.encode(a) for a in args]
        request["kwargs"] = encode_items(kwargs.items(), self.blobs, self.ref_of, keep_layout=True)
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        header, blobs = self._exchange(request)
        delegated = header.get("delegated")
        if isinstance(delegated, dict):
            raise Delegated(
                str(delegated.get("call", ""))[:200],
                str(delegated.get("where", ""))[:500],
                bool(delegated.get("tampered")),
            )
        value = self._result(header, blobs, arrays)
        for position, node in header.get("changed_args", []) or []:
            self._write_back(args, position, node, blobs)
        return value

    def request(self, request: dict, value=None):
        if "op" in request and request["op"] == "setitem":
            request = dict(request, value=self.encode(value))
        header, blobs = self._exchange(request)
        return self._result(header, blobs, [])

    def new_dict(self, items: dict) -> RemoteDict:
        """A new dict in the kernel holding ``items`` (arrays by value)."""
        request = {"op": "new_dict", "target": 0}
        request["items"] = encode_items(items.items(), self.blobs, self.ref_of, keep_layout=True)
        return self._result(*self._exchange(request), [])

    def fetch(self, remote: RemoteDict) -> RemoteDict:
        """A fresh snapshot of one of the kernel's dicts."""
        return self.request({"op": "fetch", "target": remote._ref})

    def _exchange(self, request: dict) -> tuple[dict, list[bytes]]:
        if self.closed:
            raise ChannelError("the connection to your code is closed")
        self.send(dict(request, kind="request"))
        while True:
            header, blobs = self.receive()
            kind = header.get("kind")
            if kind == "reply":
                return header, blobs
            if kind != "request":
                raise ChannelError(f"your kernel sent {str(kind)[:40]!r} instead of an answer")
            self._serve_callback(header, blobs)

    def _result(self, header: dict, blobs: list[bytes], arrays: list[np.ndarray]):
        error = header.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise ChannelError("malformed error")
            kind = str(error.get("type", "Exception"))[:100]
            cls = StudentAttributeError if kind == "AttributeError" else StudentError
            raise cls(kind, str(error.get("message", ""))[:2000], str(error.get("where", ""))[:500])
        self._blobs_in = blobs
        return decode(header.get("value"), blobs, self.resolver(arrays))

    def _write_back(self, args: tuple, position, node, blobs) -> None:
        # The student's code changed this argument in place: so does the judge's copy, as it
        # would have if the call had been made in this process.
        if not isinstance(position, int) or not 0 <= position < len(args):
            return
        original = args[position]
        new = decode(node, blobs, self.resolver())
        if isinstance(original, np.ndarray) and isinstance(new, np.ndarray):
            if new.shape == original.shape and original.flags.writeable:
                np.copyto(original, new, casting="unsafe")

    # -- the kernel asking about the judge's objects -------------------------------------------

    def _serve_callback(self, header: dict, blobs: list[bytes]) -> None:
        self.callbacks += 1
        if self.callbacks > MAX_CALLBACKS:
            raise ChannelError("your code made too many requests")
        self._blobs_in = blobs
        reply: dict = {"kind": "reply"}
        try:
            reply["value"] = self.encode(self._perform_callback(header, blobs))
        except ChannelError:
            raise
        except Exception as exc:
            self.blobs = []
            reply = {
                "kind": "reply",
                "error": {"type": type(exc).__name__, "message": str(exc)[:500]},
            }
        self.send(reply)

    def _perform_callback(self, header: dict, blobs: list[bytes]):
        op = header.get("op")
        target = self.resolver()({"$jref": header.get("target")})
        resolve = self.resolver()
        if isinstance(target, dict):
            key = header.get("key")
            if op == "getitem":
                return target[key]
            if op == "setitem":
                target[key] = decode(header.get("value"), blobs, resolve)
                return None
            if op == "delitem":
                del target[key]
                return None
            if op == "keys":
                return list(target.keys())
        elif op == "getattr":
            name = str(header.get("name"))
            exposed = getattr(type(target), "__judge_exposed__", ())
            if name not in exposed:
                raise AttributeError(f"{type(target).__name__} has no attribute {name!r}")
            return getattr(target, name)
        elif op == "call" and (
            _exposed(getattr(target, "__self__", None)) or _student_callable(target)
        ):
            args = decode({"$list": header.get("args", [])}, blobs, resolve)
            kwargs = decode_items(header.get("kwargs", []), blobs, resolve)
            return target(*args, **{str(k): v for k, v in kwargs.items()})
        raise TypeError(f"the grader's {type(target).__name__} does not allow {str(op)[:40]!r}")
