#!/usr/bin/env python3
"""Drives an Apogee server with the real PyPI client `rocketchat-api` 3.7.1 (module `rocketchat_API`).

Usage: rocketchat_api_client.py BASE_URL USERNAME PASSWORD

The user must already exist. The script checks, through the unmodified library:
  * a wrong password makes `login` raise `RocketAuthenticationException` (the server answered 401);
  * login, `me`, `channels_create`, `chat_post_message`, `channels_info`;
  * `channels_history` contains the posted messages with the right `u.username`;
  * paging through `channels_history` and `channels_list` with small page sizes terminates (the
    library keeps requesting while a page is full) and yields every item exactly once.

Every HTTP exchange is recorded through a `requests` response hook, so a failure prints what the
library sent and what the server answered. Exits 1 on any failure, 0 with one summary line on success.
"""

import importlib.metadata
import json
import signal
import sys
import traceback
import urllib.parse
import uuid

import requests
from rocketchat_API.APIExceptions.RocketExceptions import (
    RocketAuthenticationException,
    RocketConnectionException,
)
from rocketchat_API.rocketchat import RocketChat

EXPECTED_VERSION = "3.7.1"
WATCHDOG_SECONDS = 120
# A paging loop that yields more than this many items, or sends more than MAX_PAGE_REQUESTS requests,
# means the server ignored `offset`/`count` and the library would loop forever.
MAX_PAGED_ITEMS = 500
MAX_PAGE_REQUESTS = 60


class CheckFailed(Exception):
    pass


# (method, url, request body, status, response body) for every exchange, in order.
EXCHANGES = []


def record(response, *_args, **_kwargs):
    body = response.request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    EXCHANGES.append(
        (response.request.method, response.request.url, body, response.status_code, response.text)
    )


def new_session():
    session = requests.Session()
    session.hooks["response"].append(record)
    return session


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def show(value, limit=600):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


def requests_to(endpoint, since):
    """The exchanges after index `since` whose path is `/api/v1/<endpoint>`."""
    return [e for e in EXCHANGES[since:] if e[1].split("?", 1)[0].endswith("/api/v1/" + endpoint)]


def drain(generator, what):
    """Collects a paginated generator, failing instead of looping forever."""
    start = len(EXCHANGES)
    items = []
    for item in generator:
        items.append(item)
        check(
            len(items) <= MAX_PAGED_ITEMS and len(EXCHANGES) - start <= MAX_PAGE_REQUESTS,
            f"{what}: paging does not terminate ({len(items)} items after {len(EXCHANGES) - start} "
            f"requests); the server ignores offset/count. Last request: {EXCHANGES[-1][1]}",
        )
    return items


def paged(fetch, what, count, total):
    """Pages with `count` items per request; checks the request sequence and that nothing repeats."""
    start = len(EXCHANGES)
    items = drain(fetch(count=count), f"{what} count={count}")
    urls = [e[1] for e in EXCHANGES[start:]]
    # The library stops after a short page: one request per full page, plus one (that must come back
    # empty) when the total is an exact multiple of the page size.
    expected_requests = total // count + 1
    check(
        len(urls) == expected_requests,
        f"{what} count={count}: expected {expected_requests} requests for {total} items, "
        f"the library sent {len(urls)}: {urls}",
    )
    for page, url in enumerate(urls):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        check(
            query.get("offset") == [str(page * count)] and query.get("count") == [str(count)],
            f"{what}: request {page} should carry offset={page * count}&count={count}: {url}",
        )
    ids = [item.get("_id") for item in items]
    check(len(ids) == len(set(ids)), f"{what} count={count}: an item came back twice: {ids}")
    return items


def on_watchdog(_signum, _frame):
    raise CheckFailed(f"no result after {WATCHDOG_SECONDS}s (hung request or endless paging)")


def run(base_url, username, password):
    version = importlib.metadata.version("rocketchat-api")
    check(version == EXPECTED_VERSION, f"rocketchat-api {version} installed, expected {EXPECTED_VERSION}")

    # 1. A wrong password must be a 401, which the library turns into RocketAuthenticationException.
    mark = len(EXCHANGES)
    try:
        RocketChat(username, password + "-wrong", server_url=base_url, session=new_session())
        raise CheckFailed("login with a wrong password succeeded")
    except RocketAuthenticationException:
        pass
    except RocketConnectionException as exc:
        raise CheckFailed(
            "login with a wrong password raised RocketConnectionException instead of "
            f"RocketAuthenticationException (the server must answer 401): {EXCHANGES[mark:]}"
        ) from exc
    check(requests_to("login", mark)[0][3] == 401, "wrong-password login was not a 401")

    # 2. Login: HTTP 200 with status "success" and data.authToken/userId, then sent on every call.
    rocket = RocketChat(username, password, server_url=base_url, session=new_session())
    user_id = rocket.headers.get("X-User-Id")
    check(user_id and rocket.headers.get("X-Auth-Token"), f"login stored no credentials: {rocket.headers}")
    me = rocket.me()
    check(me.get("success") is True, f"me: {show(me)}")
    check(me.get("username") == username, f"me.username is {me.get('username')!r}, expected {username!r}")
    check(me.get("_id") == user_id, f"me._id is {me.get('_id')!r}, login said {user_id!r}")

    # 3. Create a channel.
    suffix = uuid.uuid4().hex[:8]
    name = f"rcapi-{suffix}"
    created = rocket.channels_create(name)
    check(created.get("success") is True, f"channels.create: {show(created)}")
    channel = created.get("channel") or {}
    room_id = channel.get("_id")
    check(channel.get("name") == name, f"channels.create channel.name is {channel.get('name')!r}, expected {name!r}")
    check(channel.get("t") == "c", f"channels.create channel.t is {channel.get('t')!r}, expected 'c'")
    check(isinstance(room_id, str) and room_id, f"channels.create returned no channel._id: {show(created)}")

    info = rocket.channels_info(room_id=room_id)
    check(info.get("success") is True, f"channels.info: {show(info)}")
    check((info.get("channel") or {}).get("name") == name, f"channels.info: {show(info)}")

    # 4. Post messages: the first by room id, more so that history spans several pages.
    texts = [f"hello from rocketchat_API {suffix} #{i}" for i in range(5)]
    posted_ids = []
    for text in texts:
        sent = rocket.chat_post_message(text, room_id=room_id)
        check(sent.get("success") is True, f"chat.postMessage: {show(sent)}")
        message = sent.get("message") or {}
        check(message.get("msg") == text, f"chat.postMessage message.msg is {message.get('msg')!r}, expected {text!r}")
        check(message.get("rid") == room_id, f"chat.postMessage message.rid is {message.get('rid')!r}")
        user = message.get("u") or {}
        check(
            user.get("username") == username and user.get("_id") == user_id,
            f"chat.postMessage message.u is {user!r}, expected username {username!r} and _id {user_id!r}",
        )
        check(isinstance(message.get("_id"), str) and message["_id"], f"chat.postMessage: no message._id: {show(sent)}")
        posted_ids.append(message["_id"])

    # 5. Read history (default page of 50).
    history = drain(rocket.channels_history(room_id), "channels.history")
    by_id = {m.get("_id"): m for m in history}
    for text, message_id in zip(texts, posted_ids):
        found = by_id.get(message_id)
        check(found is not None, f"channels.history lacks message {message_id} ({text!r}): {show(history)}")
        check(found.get("msg") == text, f"channels.history message {message_id} has msg {found.get('msg')!r}")
        check(
            (found.get("u") or {}).get("username") == username,
            f"channels.history message {message_id} has u {found.get('u')!r}, expected username {username!r}",
        )
        check(found.get("rid") == room_id, f"channels.history message {message_id} has rid {found.get('rid')!r}")
    # Rocket.Chat returns history newest first.
    order = [m.get("_id") for m in history if m.get("_id") in posted_ids]
    check(order == posted_ids[::-1], f"channels.history is not newest first: {order} vs posted {posted_ids}")

    # 6. Page through history: short last page (count=2), exact multiple (count=total), count=1.
    total = len(history)
    full_order = [m.get("_id") for m in history]
    for count in sorted({2, total, 1}):
        pages = paged(lambda **kw: rocket.channels_history(room_id, **kw), "channels.history", count, total)
        check(
            [m.get("_id") for m in pages] == full_order,
            f"channels.history count={count} pages differ from one full page: "
            f"{[m.get('_id') for m in pages]} vs {full_order}",
        )

    # 7. channels.list: create two more channels, then page through the list.
    names = {name}
    for i in range(2):
        extra = f"rcapi-{suffix}-{i}"
        made = rocket.channels_create(extra)
        check((made.get("channel") or {}).get("name") == extra, f"channels.create {extra}: {show(made)}")
        names.add(extra)
    mark = len(EXCHANGES)
    channels = drain(rocket.channels_list(), "channels.list")
    listed = [c.get("name") for c in channels]
    check(names <= set(listed), f"channels.list lacks {sorted(names - set(listed))}: {listed}")
    first = requests_to("channels.list", mark)[0]
    page = json.loads(first[4])
    for key, expected in (("offset", 0), ("count", len(channels)), ("total", len(channels))):
        check(page.get(key) == expected, f"channels.list {key} is {page.get(key)!r}, expected {expected}: {show(page)}")
    list_total = len(channels)
    for count in sorted({2, list_total}):
        pages = paged(rocket.channels_list, "channels.list", count, list_total)
        check(
            sorted(c.get("name") for c in pages) == sorted(listed),
            f"channels.list count={count} pages differ from one full page: "
            f"{[c.get('name') for c in pages]} vs {listed}",
        )

    return (
        f"rocketchat-api {version} OK against {base_url}: 401 on a wrong password, logged in as {username}, "
        f"created #{name}, posted {len(texts)} messages, history of {total} paged with count 1/2/{total}, "
        f"channels.list of {list_total} paged with count 2/{list_total}, {len(EXCHANGES)} HTTP requests"
    )


def main():
    if len(sys.argv) != 4:
        print(f"usage: {sys.argv[0]} BASE_URL USERNAME PASSWORD", file=sys.stderr)
        return 2
    base_url = sys.argv[1].rstrip("/")
    signal.signal(signal.SIGALRM, on_watchdog)
    signal.alarm(WATCHDOG_SECONDS)
    try:
        summary = run(base_url, sys.argv[2], sys.argv[3])
    except Exception as exc:  # noqa: BLE001 - any failure is reported with the HTTP trail
        signal.alarm(0)
        print(f"FAIL: {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        print("Last HTTP exchanges (method url request-body -> status response-body):", file=sys.stderr)
        for method, url, body, status, text in EXCHANGES[-8:]:
            print(f"  {method} {url} {show(body or '', 300)} -> {status} {show(text, 400)}", file=sys.stderr)
        return 1
    signal.alarm(0)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
