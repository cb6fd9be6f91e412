#!/usr/bin/env python3
"""Drives an Apogee server over DDP with the real PyPI client `rocketchat-async` 4.3.0 (with
`websockets` 10.4), unmodified.

Usage: rocketchat_async_client.py WS_URL USERNAME PASSWORD USER_ID ROOM_ID OTHER_USER_ID INCOMING OUTGOING

WS_URL is `ws://host:port/websocket`. The user (USERNAME/PASSWORD, whose id is USER_ID) must be a member
of the public room ROOM_ID, as must OTHER_USER_ID. The script, through the library:
  * logs in (`start`: connect + `login` with the SHA-256 digest) and checks the returned user id;
  * `get_channels` (`rooms/get`) must list (ROOM_ID, "c");
  * `subscribe_to_channel_messages(ROOM_ID)` and `subscribe_to_channel_changes` (rooms-changed), then one
    more `get_channels` round trip so that the server has processed the `sub`s, and prints `READY`;
  * waits for the message INCOMING that OTHER_USER_ID posts meanwhile (the caller posts it through REST
    after reading `READY`), and for the rooms-changed event it causes, and prints `RECEIVED <INCOMING>`;
  * `send_reaction` on that message (fire-and-forget in the library): the `result` must carry no `error`;
  * `send_message(OUTGOING)`: the `result` must be the saved message with the client-chosen `_id`, and the
    server must echo it on the room stream; prints `SENT <_id> <OUTGOING>` (the caller then reads it back
    through REST);
  * `send_typing_event` (the `stream-notify-room` method): the `result` must carry no `error`.

Every DDP frame is recorded (by wrapping the websocket handed to the library's dispatcher, the library
itself is untouched), so a failure prints what the library sent and what the server answered. Each step
is bounded by a timeout. With CLIENT_TRACE set, every frame is printed to stderr on success too. Exits 1 on any failure, 0 after printing `OK ...` on success. Protocol lines go to
stdout, flushed; diagnostics go to stderr.
"""

import asyncio
import importlib.metadata
import json
import os
import sys
import time
import traceback

import websockets
from rocketchat_async import RocketChat

EXPECTED_VERSIONS = {"rocketchat-async": "4.3.0", "websockets": "10.4"}
STEP_TIMEOUT = 20
RECEIVE_TIMEOUT = 60
TOTAL_TIMEOUT = 180


class CheckFailed(Exception):
    pass


# ("C->S" | "S->C", seconds since start, raw frame text), in order.
FRAMES = []
START = time.monotonic()


class TracedWebSocket:
    """Records every frame the library sends or receives; delegates everything else."""

    def __init__(self, websocket):
        self._websocket = websocket

    async def send(self, message):
        FRAMES.append(("C->S", time.monotonic() - START, message))
        return await self._websocket.send(message)

    async def recv(self):
        message = await self._websocket.recv()
        FRAMES.append(("S->C", time.monotonic() - START, message))
        return message

    def __getattr__(self, name):
        return getattr(self._websocket, name)


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def show(value, limit=700):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


def say(line):
    """A protocol line for the caller."""
    print(line, flush=True)


def note(line):
    print(line, file=sys.stderr, flush=True)


def parsed_frames(direction):
    for frame_direction, _at, text in FRAMES:
        if frame_direction != direction:
            continue
        try:
            yield json.loads(text)
        except ValueError:
            continue


def last_outgoing(method):
    """The last method call the library sent for `method`."""
    calls = [f for f in parsed_frames("C->S") if f.get("msg") == "method" and f.get("method") == method]
    check(calls, f"the library sent no `{method}` method call")
    return calls[-1]


def result_for(call_id):
    results = [f for f in parsed_frames("S->C") if f.get("msg") == "result" and f.get("id") == call_id]
    check(results, f"no `result` frame for method id {call_id!r}")
    check(len(results) == 1, f"{len(results)} `result` frames for method id {call_id!r}: {show(results)}")
    return results[0]


async def step(what, awaitable, timeout=STEP_TIMEOUT):
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise CheckFailed(f"{what}: no answer within {timeout}s") from None


async def run(ws_url, username, password, user_id, room_id, other_user_id, incoming, outgoing):
    for package, expected in EXPECTED_VERSIONS.items():
        version = importlib.metadata.version(package)
        check(version == expected, f"{package} {version} installed, expected {expected}")

    rocket = RocketChat()
    # Trace frames: wrap the websocket the library hands to its dispatcher.
    dispatcher = rocket._dispatcher
    original_run = dispatcher.run
    dispatcher.run = lambda websocket: original_run(TracedWebSocket(websocket))

    # Messages delivered to the library's subscription callback, in order.
    received = asyncio.Queue()
    # (room id, room type) pairs delivered to the rooms-changed callback.
    room_changes = []

    def on_message(channel_id, sender_id, msg_id, thread_id, text, qualifier, unread, repeated):
        received.put_nowait(
            {
                "channel_id": channel_id,
                "sender_id": sender_id,
                "msg_id": msg_id,
                "thread_id": thread_id,
                "msg": text,
                "qualifier": qualifier,
                "unread": unread,
                "repeated": repeated,
            }
        )

    seen = []

    async def wait_for_message(what, predicate, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(
                    f"{what}: not delivered within {timeout}s; the subscription callback got: {show(seen, 1500)}"
                )
            try:
                message = await asyncio.wait_for(received.get(), left)
            except asyncio.TimeoutError:
                continue
            seen.append(message)
            if predicate(message):
                return message

    # 1. Connect and log in (the library sends `connect` and `login` back to back).
    try:
        await step("connect + login", rocket.start(ws_url, username, password))
    except RuntimeError as exc:  # the library raises the server's `error.reason`
        raise CheckFailed(f"login failed: {exc}") from exc
    check(rocket.user_id == user_id, f"login returned user id {rocket.user_id!r}, expected {user_id!r}")
    login_result = result_for(last_outgoing("login")["id"])
    check(
        isinstance((login_result.get("result") or {}).get("token"), str),
        f"login result carries no token: {show(login_result)}",
    )

    # 2. rooms/get lists the room.
    channels = await step("get_channels (rooms/get)", rocket.get_channels())
    check((room_id, "c") in channels, f"get_channels lacks ({room_id!r}, 'c'): {channels}")

    # 3. Subscribe to the room's messages and to rooms-changed, then one round trip so the server has
    # handled the `sub`s.
    sub_id = await step("subscribe_to_channel_messages", rocket.subscribe_to_channel_messages(room_id, on_message))
    await step(
        "subscribe_to_channel_changes",
        rocket.subscribe_to_channel_changes(lambda channel_id, channel_type: room_changes.append((channel_id, channel_type))),
    )
    channels = await step("get_channels after subscribing", rocket.get_channels())
    check((room_id, "c") in channels, f"get_channels (second call) lacks ({room_id!r}, 'c'): {channels}")
    sub_answers = [
        f
        for f in parsed_frames("S->C")
        if (f.get("msg") == "ready" and sub_id in (f.get("subs") or [])) or (f.get("msg") == "nosub" and f.get("id") == sub_id)
    ]
    check(
        not any(f.get("msg") == "nosub" for f in sub_answers),
        f"the server refused the stream-room-messages subscription: {show(sub_answers)}",
    )
    if not sub_answers:
        note(f"NOTE: no `ready` for subscription {sub_id} yet (the library does not wait for it)")
    say("READY")

    # 4. A message another user posts (through REST) reaches the subscription callback.
    message = await wait_for_message(
        f"the message {incoming!r} posted by {other_user_id}",
        lambda m: m["msg"] == incoming,
        RECEIVE_TIMEOUT,
    )
    check(message["channel_id"] == room_id, f"received message has rid {message['channel_id']!r}: {message}")
    check(message["sender_id"] == other_user_id, f"received message has u._id {message['sender_id']!r}, expected {other_user_id!r}")
    check(message["thread_id"] is None, f"received message has tmid {message['thread_id']!r}")
    check(message["qualifier"] is None, f"received message has t {message['qualifier']!r}")
    check(isinstance(message["msg_id"], str) and message["msg_id"], f"received message has no _id: {message}")
    deadline = time.monotonic() + STEP_TIMEOUT
    while (room_id, "c") not in room_changes and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    check(
        (room_id, "c") in room_changes,
        f"no rooms-changed event for {room_id} within {STEP_TIMEOUT}s of the new message; got {room_changes}",
    )
    say(f"RECEIVED {incoming}")

    # 4b. React to it. The library awaits nothing; a round trip later the server must have answered.
    await step("send_reaction", rocket.send_reaction(message["msg_id"], ":thumbsup:"))
    await step("get_channels after reacting", rocket.get_channels())
    reaction = result_for(last_outgoing("setReaction")["id"])
    check("error" not in reaction, f"setReaction failed: {show(reaction)}")

    # 5. send_message: the result is the saved message under the client-chosen id, echoed on the stream.
    await step("send_message", rocket.send_message(outgoing, room_id))
    call = last_outgoing("sendMessage")
    chosen_id = call["params"][0]["_id"]
    result = result_for(call["id"])
    check("error" not in result, f"sendMessage failed: {show(result)}")
    saved = result.get("result") or {}
    check(saved.get("_id") == chosen_id, f"sendMessage result._id is {saved.get('_id')!r}, the client chose {chosen_id!r}: {show(result)}")
    check(saved.get("msg") == outgoing and saved.get("rid") == room_id, f"sendMessage result: {show(result)}")
    check((saved.get("u") or {}).get("_id") == user_id, f"sendMessage result.u: {show(result)}")
    echo = await wait_for_message(f"the echo of our own message {chosen_id}", lambda m: m["msg_id"] == chosen_id, STEP_TIMEOUT)
    check(echo["sender_id"] == user_id and echo["msg"] == outgoing, f"echo of our own message: {echo}")
    say(f"SENT {chosen_id} {outgoing}")

    # 6. Typing: the stream-notify-room method must answer without an error.
    await step("send_typing_event", rocket.send_typing_event(room_id))
    typing = result_for(last_outgoing("stream-notify-room")["id"])
    check("error" not in typing, f"stream-notify-room (typing) failed: {show(typing)}")

    # 7. Unsubscribe (the library sends `unsub` and awaits nothing), then close.
    await step("unsubscribe", rocket.unsubscribe(sub_id))
    await step("get_channels after unsubscribing", rocket.get_channels())

    return (
        f"OK rocketchat-async {EXPECTED_VERSIONS['rocketchat-async']} against {ws_url}: logged in as {username}, "
        f"rooms/get lists {room_id}, received a REST-posted message and its rooms-changed event, reacted, "
        f"sent {chosen_id}, typing accepted, "
        f"{len(FRAMES)} DDP frames"
    ), rocket


async def main_async(argv):
    rocket = None
    try:
        summary, rocket = await asyncio.wait_for(run(*argv), TOTAL_TIMEOUT)
    except asyncio.TimeoutError:
        raise CheckFailed(f"no result after {TOTAL_TIMEOUT}s") from None
    finally:
        task = getattr(rocket, "_ws_connection_task", None)
        if task is not None:
            task.cancel()
            try:
                await asyncio.wait_for(task, 10)
            except (asyncio.CancelledError, asyncio.TimeoutError, websockets.ConnectionClosed):
                pass
    return summary


def main():
    if len(sys.argv) != 9:
        print(
            f"usage: {sys.argv[0]} WS_URL USERNAME PASSWORD USER_ID ROOM_ID OTHER_USER_ID INCOMING OUTGOING",
            file=sys.stderr,
        )
        return 2
    try:
        summary = asyncio.run(main_async(sys.argv[1:]))
    except Exception as exc:  # noqa: BLE001 - any failure is reported with the DDP trail
        note(f"FAIL: {type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stderr)
        note("DDP frames (direction, seconds, frame):")
        for direction, at, text in FRAMES[-40:]:
            note(f"  {direction} {at:7.3f} {show(text, 600)}")
        return 1
    if os.environ.get("CLIENT_TRACE"):
        note("DDP frames (direction, seconds, frame):")
        for direction, at, text in FRAMES:
            note(f"  {direction} {at:7.3f} {text}")
    say(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
