"""Client subscriptions: bot ids, matching, commands, query strings and their errors (pure)."""

from __future__ import annotations

import fnmatch
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.subscriptions import (
    ACTIONS,
    DEFAULT_SUBSCRIPTION,
    EVENTS,
    MAX_BOT_PATTERNS,
    MAX_COMMAND_BYTES,
    MAX_PATTERN_CHARS,
    MESSAGE_KINDS,
    Command,
    CommandError,
    Subscription,
    apply,
    bot_id,
    from_query,
    parse_command,
)

BOT_CACHE_LIMIT = 10_000
NON_DEFAULT_EVENTS = ("status", "alerts", "stats")


def command(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def refusal(raw: bytes, max_bytes: int = MAX_COMMAND_BYTES) -> CommandError:
    with pytest.raises(CommandError) as caught:
        parse_command(raw, max_bytes)
    return caught.value


def padded_command(total_bytes: int) -> bytes:
    """A valid list command of exactly `total_bytes` bytes (JSON whitespace takes the slack)."""
    head, tail = b'{"action":"list"', b"}"
    raw = head + b" " * (total_bytes - len(head) - len(tail)) + tail
    assert len(raw) == total_bytes
    return raw


# --- bot_id --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "source", "expected"),
    [
        ("bot:alpha", None, "bot:alpha"),
        ("bot:alpha", "", "bot:alpha"),
        ("bot:alpha", "gate-1", "bot:alpha/gate-1"),
        ("pingpong", "bot", "pingpong/bot"),
    ],
)
def test_bot_id(channel: str, source: str | None, expected: str) -> None:
    assert bot_id(channel, source) == expected


# --- Subscription.wants ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*MESSAGE_KINDS, None])
@pytest.mark.parametrize("bot", [None, "bot:alpha", "bot:alpha/gate-1", "anything at all"])
def test_default_wants_every_pingpong_and_nothing_else(kind: str | None, bot: str | None) -> None:
    assert DEFAULT_SUBSCRIPTION.wants("pingpong", bot, kind) is True
    for event in NON_DEFAULT_EVENTS:
        assert DEFAULT_SUBSCRIPTION.wants(event, bot, kind) is False


def test_default_subscription_fields() -> None:
    assert Subscription(None, None, frozenset({"pingpong"})) == DEFAULT_SUBSCRIPTION
    assert DEFAULT_SUBSCRIPTION.wants("no-such-event") is False


def test_types_filter() -> None:
    pings = Subscription(types=frozenset({"ping"}))
    assert pings.wants("pingpong", "bot:a", "ping") is True
    assert pings.wants("pingpong", "bot:a", "pong") is False
    # kind=None means "not applicable": the type filter does not apply.
    assert pings.wants("pingpong", "bot:a") is True
    nothing = Subscription(types=frozenset())
    assert nothing.wants("pingpong", "bot:a", "ping") is False
    assert nothing.wants("pingpong", "bot:a", "pong") is False


@pytest.mark.parametrize(
    ("patterns", "bot", "wanted"),
    [
        (("bot:alpha",), "bot:alpha", True),
        (("bot:alpha",), "bot:alphabet", False),
        (("bot:alpha",), "bot:alpha/gate-1", False),
        (("bot:alpha",), "BOT:alpha", False),
        (("bot:*",), "bot:alpha", True),
        (("bot:*",), "bot:alpha/gate-1", True),  # `*` crosses the "/"
        (("bot:*",), "bot:", True),
        (("bot:*",), "other:alpha", False),
        (("bot:*",), "Bot:alpha", False),  # case-sensitive
        (("bot:*/gate-?",), "bot:alpha/gate-1", True),
        (("bot:*/gate-?",), "bot:beta/gate-x", True),
        (("bot:*/gate-?",), "bot:alpha/gate-12", False),
        (("bot:*/gate-?",), "bot:alpha/gate-", False),
        (("bot:*/gate-?",), "bot:alpha", False),
        (("bot:a", "bot:b*"), "bot:a", True),
        (("bot:a", "bot:b*"), "bot:bee", True),
        (("bot:a", "bot:b*"), "bot:c", False),
        ((), "bot:a", False),
    ],
)
def test_bots_patterns(patterns: tuple[str, ...], bot: str, wanted: bool) -> None:
    subscription = Subscription(bots=patterns)
    assert subscription.wants("pingpong", bot, "ping") is wanted
    assert subscription.wants_bot(bot) is wanted
    # A second ask (now from the cache) answers the same.
    assert subscription.wants("pingpong", bot, "ping") is wanted


def test_bot_none_means_not_applicable() -> None:
    only_alpha = Subscription(bots=("bot:alpha",), events=frozenset({"pingpong", "alerts"}))
    assert only_alpha.wants("alerts") is True
    assert only_alpha.wants("pingpong", None, "pong") is True
    assert only_alpha.wants("alerts", "bot:beta") is False
    # The event filter still applies without a bot.
    assert only_alpha.wants("status") is False


def test_events_filter() -> None:
    ops = Subscription(events=frozenset({"status", "alerts"}))
    assert ops.wants("status", "bot:a") is True
    assert ops.wants("alerts") is True
    assert ops.wants("pingpong", "bot:a", "ping") is False
    assert ops.wants("stats") is False
    everything = Subscription(events=frozenset(EVENTS))
    assert all(everything.wants(event, "bot:a", "pong") for event in EVENTS)


def test_events_and_types_and_bots_combine() -> None:
    subscription = Subscription(
        types=frozenset({"pong"}), bots=("bot:a*",), events=frozenset({"pingpong", "status"})
    )
    assert subscription.wants("pingpong", "bot:ab", "pong") is True
    assert subscription.wants("pingpong", "bot:ab", "ping") is False
    assert subscription.wants("pingpong", "bot:b", "pong") is False
    assert subscription.wants("status", "bot:ab") is True
    assert subscription.wants("status", "bot:b") is False
    assert subscription.wants("stats", "bot:ab") is False


def test_bot_cache_stays_bounded_and_correct_once_full() -> None:
    subscription = Subscription(bots=("bot:*",))
    for index in range(BOT_CACHE_LIMIT + 500):
        expected = index % 2 == 0
        bot = f"bot:{index}" if expected else f"other:{index}"
        assert subscription.wants_bot(bot) is expected
    assert len(subscription._bot_cache) == BOT_CACHE_LIMIT
    # Ids asked after the cache filled up are still matched, just not remembered.
    assert subscription.wants("pingpong", "bot:late", "ping") is True
    assert subscription.wants("pingpong", "other:late", "ping") is False
    assert "bot:late" not in subscription._bot_cache
    assert len(subscription._bot_cache) == BOT_CACHE_LIMIT


def test_cache_is_not_used_when_every_bot_is_wanted() -> None:
    subscription = Subscription()
    assert subscription.wants_bot("bot:a") is True
    assert subscription._bot_cache == {}


_pattern_text = st.text(alphabet="ab*?/:[]!", min_size=1, max_size=6)
_bot_text = st.text(alphabet="ab/:[]!", max_size=6)


@given(
    patterns=st.lists(_pattern_text, max_size=5).map(tuple),
    bots=st.lists(_bot_text, max_size=20),
)
def test_cache_never_changes_an_answer(patterns: tuple[str, ...], bots: list[str]) -> None:
    subscription = Subscription(bots=patterns)
    for _ in range(2):
        for bot in bots:
            expected = any(fnmatch.fnmatchcase(bot, pattern) for pattern in patterns)
            assert subscription.wants_bot(bot) is expected


def test_equal_subscriptions_are_equal_and_hash_equal_whatever_their_caches() -> None:
    warm = Subscription(types=frozenset({"ping"}), bots=("bot:a*", "bot:b"))
    cold = Subscription(types=frozenset({"ping"}), bots=("bot:a*", "bot:b"))
    for bot in ("bot:a1", "bot:b", "bot:c"):
        warm.wants_bot(bot)
    assert warm._bot_cache != cold._bot_cache
    assert warm == cold
    assert hash(warm) == hash(cold)
    groups = {warm: "group"}
    assert groups[cold] == "group"
    assert Subscription() == DEFAULT_SUBSCRIPTION
    assert hash(Subscription()) == hash(DEFAULT_SUBSCRIPTION)


@pytest.mark.parametrize(
    "other",
    [
        Subscription(types=frozenset({"pong"}), bots=("bot:a",)),
        Subscription(types=None, bots=("bot:a",)),
        Subscription(types=frozenset({"ping"}), bots=None),
        Subscription(types=frozenset({"ping"}), bots=("bot:a",), events=frozenset({"status"})),
    ],
)
def test_different_subscriptions_are_unequal(other: Subscription) -> None:
    assert Subscription(types=frozenset({"ping"}), bots=("bot:a",)) != other


# --- to_json -------------------------------------------------------------------------------


def test_to_json_default() -> None:
    assert DEFAULT_SUBSCRIPTION.to_json() == {"types": "all", "bots": "all", "events": ["pingpong"]}


def test_to_json_explicit_fields() -> None:
    subscription = Subscription(
        types=frozenset({"pong", "ping"}),
        bots=("bot:z", "bot:a*"),
        events=frozenset({"stats", "pingpong", "alerts", "status"}),
    )
    shape = subscription.to_json()
    assert shape == {
        "types": ["ping", "pong"],
        "bots": ["bot:z", "bot:a*"],  # in the order subscribed
        "events": ["pingpong", "status", "alerts", "stats"],  # canonical order
    }
    assert orjson.loads(orjson.dumps(shape)) == shape


def test_to_json_empty_sets_are_lists_not_all() -> None:
    subscription = Subscription(types=frozenset(), bots=(), events=frozenset())
    assert subscription.to_json() == {"types": [], "bots": [], "events": []}


# --- parse_command: accepted ---------------------------------------------------------------


def test_parse_list() -> None:
    assert parse_command(command(action="list")) == Command("list")
    assert parse_command(command(action="list", id="q1")) == Command("list", request_id="q1")


def test_parse_subscribe_every_field() -> None:
    raw = command(
        action="subscribe",
        types=["ping"],
        bots=["bot:a", "bot:b*"],
        events=["status", "pingpong"],
        id=7,
    )
    assert parse_command(raw) == Command(
        "subscribe",
        types=frozenset({"ping"}),
        bots=("bot:a", "bot:b*"),
        events=frozenset({"status", "pingpong"}),
        request_id=7,
    )


def test_parse_unsubscribe_one_field() -> None:
    parsed = parse_command(command(action="unsubscribe", events=["alerts"]))
    assert parsed == Command("unsubscribe", events=frozenset({"alerts"}))
    assert parsed.types is None
    assert parsed.bots is None


def test_comma_separated_strings_in_place_of_lists() -> None:
    parsed = parse_command(
        command(action="subscribe", types="ping, pong", bots="bot:a,bot:b*", events="stats")
    )
    assert parsed.types == frozenset({"ping", "pong"})
    assert parsed.bots == ("bot:a", "bot:b*")
    assert parsed.events == frozenset({"stats"})


def test_bot_patterns_are_deduplicated_in_order() -> None:
    parsed = parse_command(command(action="subscribe", bots=["bot:b", "bot:a", "bot:b"]))
    assert parsed.bots == ("bot:b", "bot:a")


@pytest.mark.parametrize("request_id", ["abc", "", "x" * 64, 0, -5, 2**62])
def test_request_id_is_carried(request_id: str | int) -> None:
    assert parse_command(command(action="list", id=request_id)).request_id == request_id
    parsed = parse_command(command(action="subscribe", types=["pong"], id=request_id))
    assert parsed.request_id == request_id


def test_request_id_defaults_to_none() -> None:
    assert parse_command(command(action="list")).request_id is None
    assert parse_command(command(action="list", id=None)).request_id is None


def test_command_exactly_at_the_limit_is_accepted() -> None:
    assert parse_command(padded_command(MAX_COMMAND_BYTES)) == Command("list")


def test_limits_are_inclusive() -> None:
    patterns = [f"bot:{index}" for index in range(MAX_BOT_PATTERNS)]
    assert parse_command(command(action="subscribe", bots=patterns)).bots == tuple(patterns)
    longest = "b" * MAX_PATTERN_CHARS
    assert parse_command(command(action="subscribe", bots=[longest])).bots == (longest,)


def test_max_bytes_is_a_parameter() -> None:
    raw = command(action="list")
    assert parse_command(raw, max_bytes=len(raw)) == Command("list")
    error = refusal(raw, max_bytes=len(raw) - 1)
    assert error.code == "oversize"
    assert str(len(raw) - 1) in error.message


# --- parse_command: refused ----------------------------------------------------------------

ERROR_TABLE: list[tuple[str, bytes, str, str]] = [
    # (case id, raw, code, a fragment the message must contain)
    ("oversize-valid-json", padded_command(MAX_COMMAND_BYTES + 1), "oversize", "4097"),
    ("oversize-garbage", b"x" * (MAX_COMMAND_BYTES + 1), "oversize", str(MAX_COMMAND_BYTES)),
    ("garbage", b"subscribe ping", "invalid_json", "JSON"),
    ("empty", b"", "invalid_json", "JSON"),
    ("truncated", b'{"action":"list"', "invalid_json", "JSON"),
    ("invalid-utf8", b'{"action":"list","id":"\xff\xfe"}', "invalid_json", "JSON"),
    ("raw-binary", b"\x00\x81\xfe\xff", "invalid_json", "JSON"),
    ("nan", b'{"action":"list","id":NaN}', "invalid_json", "JSON"),
    ("infinity", b'{"action":"list","id":Infinity}', "invalid_json", "JSON"),
    ("too-deep", b"[" * 2000, "invalid_json", "JSON"),
    ("array", b'["subscribe"]', "bad_command", "object"),
    ("string", b'"subscribe"', "bad_command", "object"),
    ("number", b"42", "bad_command", "object"),
    ("null", b"null", "bad_command", "object"),
    ("binary-in-a-string", b'"\\u0000\\u0001\\u00ff\\ufffd"', "bad_command", "object"),
    ("subscribe-no-fields", command(action="subscribe"), "bad_command", '"subscribe"'),
    ("unsubscribe-only-id", command(action="unsubscribe", id=1), "bad_command", '"unsubscribe"'),
    ("unknown-action", command(action="publish"), "unknown_action", "publish"),
    ("action-case", command(action="SUBSCRIBE"), "unknown_action", "SUBSCRIBE"),
    ("action-number", command(action=3), "unknown_action", "'3'"),
    ("no-action", command(types=["ping"]), "unknown_action", "subscribe"),
    ("unknown-field", command(action="subscribe", type=["ping"]), "bad_field", "type"),
    ("unknown-field-list", command(action="list", verbose=True), "bad_field", "verbose"),
    ("types-number", command(action="subscribe", types=1), "bad_field", '"types"'),
    ("types-null", command(action="subscribe", types=None), "bad_field", '"types"'),
    ("types-mixed", command(action="subscribe", types=["ping", 2]), "bad_field", '"types"'),
    ("bots-object", command(action="subscribe", bots={"a": 1}), "bad_field", '"bots"'),
    ("events-bool", command(action="subscribe", events=True), "bad_field", '"events"'),
    ("unknown-type", command(action="subscribe", types=["ping", "pang"]), "bad_field", "pang"),
    ("unknown-event", command(action="subscribe", events=["alert"]), "bad_field", "alert"),
    ("unknown-type-csv", command(action="unsubscribe", types="ping,PONG"), "bad_field", "PONG"),
    (
        "too-many-bots",
        command(action="subscribe", bots=[f"b{index}" for index in range(MAX_BOT_PATTERNS + 1)]),
        "bad_field",
        '"bots"',
    ),
    (
        "pattern-too-long",
        command(action="subscribe", bots=["ok", "b" * (MAX_PATTERN_CHARS + 1)]),
        "bad_field",
        '"bots"',
    ),
    ("pattern-empty", command(action="subscribe", bots=[""]), "bad_field", '"bots"'),
    ("pattern-blank", command(action="subscribe", bots=["bot:a", "   "]), "bad_field", '"bots"'),
    ("type-empty", command(action="subscribe", types=[""]), "bad_field", '"types"'),
    ("id-bool", command(action="list", id=True), "bad_field", '"id"'),
    ("id-float", command(action="list", id=1.5), "bad_field", '"id"'),
    ("id-object", command(action="list", id={"n": 1}), "bad_field", '"id"'),
    ("id-list", command(action="list", id=[1]), "bad_field", '"id"'),
    ("id-too-long", command(action="list", id="x" * 65), "bad_field", '"id"'),
    ("id-huge-int", b'{"action":"list","id":' + b"9" * 70 + b"}", "bad_field", '"id"'),
]


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [pytest.param(raw, code, fragment, id=case) for case, raw, code, fragment in ERROR_TABLE],
)
def test_parse_command_errors(raw: bytes, code: str, fragment: str) -> None:
    error = refusal(raw)
    assert error.code == code
    assert fragment in error.message
    assert str(error) == error.message
    assert isinstance(error, ValueError)


def test_oversize_is_checked_before_parsing() -> None:
    raw = command(action="subscribe", types=["ping"], id="x" * MAX_COMMAND_BYTES)
    assert orjson.loads(raw)["action"] == "subscribe"  # valid JSON, just too big
    error = refusal(raw)
    assert error.code == "oversize"
    assert str(len(raw)) in error.message


def test_unknown_action_message_lists_the_actions() -> None:
    error = refusal(command(action="publish"))
    assert all(action in error.message for action in ACTIONS)


def test_unknown_type_message_lists_the_allowed_types() -> None:
    error = refusal(command(action="subscribe", types=["pang"]))
    assert all(kind in error.message for kind in MESSAGE_KINDS)


_json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8)
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
_command_like = st.dictionaries(
    st.sampled_from(["action", "types", "bots", "events", "id", "extra"]),
    st.sampled_from([*ACTIONS, *MESSAGE_KINDS, *EVENTS, "bot:*", "", "nope"])
    | st.lists(st.sampled_from([*MESSAGE_KINDS, *EVENTS, "bot:*", "", " ", "nope"]), max_size=4)
    | _json_values,
    max_size=5,
)


def _outcome(raw: bytes) -> Command | CommandError:
    try:
        return parse_command(raw)
    except CommandError as exc:
        return exc


@given(st.binary(max_size=MAX_COMMAND_BYTES + 16))
def test_arbitrary_bytes_give_a_command_or_a_command_error(raw: bytes) -> None:
    outcome = _outcome(raw)
    assert isinstance(outcome, Command | CommandError)
    if isinstance(outcome, CommandError):
        assert outcome.code in {
            "oversize",
            "invalid_json",
            "bad_command",
            "unknown_action",
            "bad_field",
        }
        assert outcome.message


@given(_command_like | _json_values)
def test_arbitrary_json_gives_a_command_or_a_command_error(body: Any) -> None:
    outcome = _outcome(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS))
    assert isinstance(outcome, Command | CommandError)
    if isinstance(outcome, Command):
        assert outcome.action in ACTIONS
        assert outcome.types is None or outcome.types <= set(MESSAGE_KINDS)
        assert outcome.events is None or outcome.events <= set(EVENTS)
        assert outcome.bots is None or all(outcome.bots)


# --- apply -----------------------------------------------------------------------------------


def sub(**fields: Any) -> Command:
    return parse_command(command(action="subscribe", **fields))


def unsub(**fields: Any) -> Command:
    return parse_command(command(action="unsubscribe", **fields))


def test_subscribe_narrows_all_to_exactly_the_named_set() -> None:
    result = apply(DEFAULT_SUBSCRIPTION, sub(types=["ping"], bots=["bot:a", "bot:b*"]))
    assert result == Subscription(types=frozenset({"ping"}), bots=("bot:a", "bot:b*"))


def test_subscribe_adds_to_an_explicit_set() -> None:
    current = Subscription(types=frozenset({"ping"}), bots=("bot:a", "bot:b"))
    result = apply(current, sub(types=["pong"], bots=["bot:b", "bot:c"]))
    assert result.types == frozenset({"ping", "pong"})
    assert result.bots == ("bot:a", "bot:b", "bot:c")
    assert result.events == frozenset({"pingpong"})


def test_unsubscribe_types_from_all_leaves_the_complement() -> None:
    assert apply(DEFAULT_SUBSCRIPTION, unsub(types=["ping"])).types == frozenset({"pong"})
    assert apply(DEFAULT_SUBSCRIPTION, unsub(types=["ping", "pong"])).types == frozenset()


def test_unsubscribe_removes_from_explicit_sets() -> None:
    current = Subscription(types=frozenset({"ping", "pong"}), bots=("bot:a", "bot:b*", "bot:c"))
    result = apply(current, unsub(types=["pong"], bots=["bot:b*", "bot:unknown"]))
    assert result.types == frozenset({"ping"})
    assert result.bots == ("bot:a", "bot:c")  # removal is by pattern, not by match


def test_unsubscribing_bots_while_subscribed_to_all_is_refused() -> None:
    with pytest.raises(CommandError) as caught:
        apply(DEFAULT_SUBSCRIPTION, unsub(bots=["bot:a"]))
    assert caught.value.code == "bad_command"
    assert "bot" in caught.value.message


def test_events_add_and_remove() -> None:
    added = apply(DEFAULT_SUBSCRIPTION, sub(events=["status", "alerts"]))
    assert added.events == frozenset({"pingpong", "status", "alerts"})
    assert added.types is None
    assert added.bots is None
    removed = apply(added, unsub(events=["pingpong", "stats"]))
    assert removed.events == frozenset({"status", "alerts"})
    assert removed.wants("pingpong", "bot:a", "ping") is False
    assert removed.wants("status", "bot:a") is True


def test_total_bot_patterns_over_the_limit_are_refused() -> None:
    half = MAX_BOT_PATTERNS // 2
    first = apply(DEFAULT_SUBSCRIPTION, sub(bots=[f"bot:a{index}" for index in range(half)]))
    full = apply(first, sub(bots=[f"bot:b{index}" for index in range(MAX_BOT_PATTERNS - half)]))
    assert full.bots is not None
    assert len(full.bots) == MAX_BOT_PATTERNS
    # Re-subscribing to patterns already held adds nothing and is fine.
    assert apply(full, sub(bots=["bot:a0"])) == full
    with pytest.raises(CommandError) as caught:
        apply(full, sub(bots=["bot:one-too-many"]))
    assert caught.value.code == "bad_field"
    assert str(MAX_BOT_PATTERNS) in caught.value.message
    assert '"bots"' in caught.value.message


def test_apply_returns_a_new_value_and_leaves_the_original_alone() -> None:
    original = Subscription(types=frozenset({"ping"}), bots=("bot:a",))
    snapshot = Subscription(types=frozenset({"ping"}), bots=("bot:a",))
    result = apply(original, sub(types=["pong"], bots=["bot:b"], events=["stats"]))
    assert result is not original
    assert original == snapshot
    assert result != original
    assert apply(DEFAULT_SUBSCRIPTION, unsub(types=["ping"])) != DEFAULT_SUBSCRIPTION
    assert Subscription() == DEFAULT_SUBSCRIPTION


def test_apply_list_changes_nothing() -> None:
    current = Subscription(types=frozenset({"pong"}), bots=("bot:a",))
    assert apply(current, Command("list")) == current


_valid_fields = st.fixed_dictionaries(
    {"action": st.sampled_from(["subscribe", "unsubscribe"])},
    optional={
        "types": st.lists(st.sampled_from(MESSAGE_KINDS), min_size=1, max_size=3),
        "bots": st.lists(
            st.text(alphabet="ab*?:/-", min_size=1, max_size=5), min_size=1, max_size=30
        ),
        "events": st.lists(st.sampled_from(EVENTS), min_size=1, max_size=4),
        "id": st.integers(0, 1000),
    },
).filter(lambda body: len(set(body) - {"action", "id"}) > 0)


def _applied(current: Subscription, parsed: Command) -> Subscription | CommandError:
    try:
        return apply(current, parsed)
    except CommandError as exc:
        return exc


@given(st.lists(_valid_fields, max_size=12))
def test_any_sequence_of_valid_commands_keeps_the_invariants(bodies: list[dict[str, Any]]) -> None:
    current: Subscription = DEFAULT_SUBSCRIPTION
    for body in bodies:
        outcome = _applied(current, parse_command(orjson.dumps(body)))
        if isinstance(outcome, CommandError):
            assert outcome.code in {"bad_command", "bad_field"}
            continue
        current = outcome
        assert current.types is None or current.types <= {"ping", "pong"}
        assert current.events <= set(EVENTS)
        if current.bots is not None:
            assert len(set(current.bots)) == len(current.bots)
            assert len(current.bots) <= MAX_BOT_PATTERNS
            assert all(current.bots)


# --- from_query ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", DEFAULT_SUBSCRIPTION),
        ("token=abc.def", DEFAULT_SUBSCRIPTION),
        ("types=ping", Subscription(types=frozenset({"ping"}))),
        ("types=ping,pong", Subscription(types=frozenset({"ping", "pong"}))),
        ("types=ping&types=pong", Subscription(types=frozenset({"ping", "pong"}))),
        ("bots=a,b*", Subscription(bots=("a", "b*"))),
        ("bots=a&bots=b*&bots=a", Subscription(bots=("a", "b*"))),
        ("bots=bot%3A%2A%2Fgate-%3F", Subscription(bots=("bot:*/gate-?",))),
        ("events=pingpong,status", Subscription(events=frozenset({"pingpong", "status"}))),
        ("events=alerts", Subscription(events=frozenset({"alerts"}))),
        (
            "token=abc&types=pong&bots=bot:a&events=stats&_=1700000000",
            Subscription(types=frozenset({"pong"}), bots=("bot:a",), events=frozenset({"stats"})),
        ),
    ],
)
def test_from_query(query: str, expected: Subscription) -> None:
    assert from_query(query) == expected


def test_from_query_events_default_to_pingpong_only() -> None:
    subscription = from_query("types=ping")
    assert subscription.events == frozenset({"pingpong"})
    assert subscription.wants("status") is False


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("types=pang", "pang"),
        ("types=ping&types=bogus", "bogus"),
        ("events=nope", "nope"),
        ("events=pingpong,status,alert", "alert"),
        ("bots=" + "b" * (MAX_PATTERN_CHARS + 1), '"bots"'),
        ("bots=" + ",".join(f"b{index}" for index in range(MAX_BOT_PATTERNS + 1)), '"bots"'),
        ("bots=", '"bots"'),
    ],
)
def test_from_query_bad_values(query: str, fragment: str) -> None:
    with pytest.raises(CommandError) as caught:
        from_query(query)
    assert caught.value.code == "bad_field"
    assert fragment in caught.value.message
