"""The host's room (app/room.py): who gets what, with a clock the test controls."""

from __future__ import annotations

import pytest

from app.messages import (
    Chat,
    Ended,
    Error,
    Joined,
    Left,
    Members,
    Notice,
    Renamed,
    Send,
    ServerMessage,
    Welcome,
)
from app.protocol import MAX_NAME, check_name, name_key
from app.room import HELP, HISTORY, Room
from tests.helpers import replayed

HOST, ANN, BOB, CAT = 0, 1, 2, 3


class Clock:
    """A clock that only moves when the test moves it."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Tokens:
    """Resume tokens the test can predict: t1, t2, ..."""

    def __init__(self) -> None:
        self.issued = 0

    def __call__(self) -> str:
        self.issued += 1
        return f"t{self.issued}"


def inbox(sends: list[Send], member: int) -> list[ServerMessage]:
    """What one member receives from a list of deliveries, in order."""
    return [send.message for send in sends if member in send.to]


def welcome_of(sends: list[Send], member: int) -> Welcome:
    (welcome,) = [m for m in inbox(sends, member) if isinstance(m, Welcome)]
    return welcome


def history_of(room: Room, sends: list[Send], member: int) -> tuple[Chat, ...]:
    return replayed(room, sends, member)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def room(clock: Clock) -> Room:
    """A room with the host's own person and two app peers, Ann and Bob."""
    room = Room(clock=clock, new_token=Tokens())
    room.join(HOST, "Host", "local")
    room.join(ANN, "Ann", "app")  # token t1
    room.join(BOB, "Bob", "app")  # token t2
    return room


# --- joining --------------------------------------------------------------------------------------


def test_first_member_is_welcomed_alone() -> None:
    room = Room()
    sends = room.join(HOST, "Host", "local")
    assert inbox(sends, HOST) == [Welcome("Host", ("Host",), (), None)]
    assert all(send.to == () for send in sends if not isinstance(send.message, Welcome))


def test_join_welcomes_the_newcomer_and_tells_the_others() -> None:
    room = Room(new_token=Tokens())
    room.join(HOST, "Host", "local")
    sends = room.join(ANN, "Ann", "app")
    assert inbox(sends, ANN) == [Welcome("Ann", ("Host", "Ann"), (), None, "t1")]
    assert inbox(sends, HOST) == [Joined("Ann")]
    sends = room.join(BOB, "Bob", "text")
    assert inbox(sends, BOB) == [Welcome("Bob", ("Host", "Ann", "Bob"), (), None)]
    assert inbox(sends, HOST) == inbox(sends, ANN) == [Joined("Bob")]


def test_member_list_keeps_join_order(room: Room) -> None:
    assert room.names() == ("Host", "Ann", "Bob")
    room.leave(ANN)
    room.join(CAT, "Cat", "app")
    assert room.names() == ("Host", "Bob", "Cat")
    assert len(room) == 3
    assert ANN not in room
    assert CAT in room


def test_questions_about_members(room: Room) -> None:
    assert room.name_of(ANN) == "Ann"
    assert room.id_of("ann") == ANN
    assert room.id_of("ＡＮＮ") == ANN
    assert room.id_of("Nobody") is None


def test_taken_name_gets_a_suffix_and_a_note(room: Room) -> None:
    sends = room.join(CAT, "Ann", "app")
    welcome = welcome_of(sends, CAT)
    assert welcome.name == "Ann (2)"
    assert welcome.note == "The name Ann is taken; you are Ann (2)."
    assert inbox(sends, ANN) == [Joined("Ann (2)")]
    welcome = welcome_of(room.join(4, "ann", "app"), 4)
    assert welcome.name == "ann (3)"
    assert room.names() == ("Host", "Ann", "Bob", "Ann (2)", "ann (3)")


def test_names_are_compared_after_normalising(room: Room) -> None:
    welcome = welcome_of(room.join(CAT, "ＢＯＢ", "app"), CAT)
    assert welcome.name == "ＢＯＢ (2)"
    assert welcome.note is not None


def test_a_free_name_gets_no_note(room: Room) -> None:
    assert welcome_of(room.join(CAT, "  Cat  ", "app"), CAT) == Welcome(
        "Cat", ("Host", "Ann", "Bob", "Cat"), (), None, "t3"
    )


def test_only_app_members_get_a_resume_token() -> None:
    room = Room()
    tokens = [
        welcome_of(room.join(i, name, kind), i).token
        for i, (name, kind) in enumerate(
            [("H", "local"), ("A", "app"), ("B", "app"), ("T", "text")]
        )
    ]
    assert tokens[0] is None
    assert tokens[3] is None
    assert tokens[1]
    assert tokens[2]
    assert tokens[1] != tokens[2]


def test_suffix_keeps_a_long_name_within_the_limit() -> None:
    room = Room()
    long = "x" * MAX_NAME
    room.join(ANN, long, "app")
    name = welcome_of(room.join(BOB, long, "app"), BOB).name
    assert name == "x" * (MAX_NAME - 4) + " (2)"
    assert check_name(name) == name


def test_suffix_never_leaves_a_double_space() -> None:
    room = Room()
    name = "a" * (MAX_NAME - 5) + " bcd"  # cutting it for the suffix ends on the space
    room.join(ANN, name, "app")
    second = welcome_of(room.join(BOB, name, "app"), BOB).name
    assert second == "a" * (MAX_NAME - 5) + " (2)"
    assert check_name(second) == second


@pytest.mark.parametrize(
    ("requested", "words"),
    [("\u202eevil", "U+202E"), ("", "empty"), ("/who", "'/'"), ("x" * 40, "at most")],
)
def test_refused_name_becomes_a_guest_name_with_a_note(
    room: Room, requested: str, words: str
) -> None:
    sends = room.join(CAT, requested, "app")
    welcome = welcome_of(sends, CAT)
    assert welcome.name == "guest1"
    assert welcome.note is not None
    assert welcome.note.startswith("Name refused: ")
    assert words in welcome.note
    assert welcome.note.endswith("You are guest1.")
    assert inbox(sends, ANN) == [Joined("guest1")]


def test_guests_are_numbered_and_skip_taken_names() -> None:
    room = Room()
    assert welcome_of(room.join(1, None, "text"), 1).name == "guest1"
    assert welcome_of(room.join(2, None, "text"), 2).name == "guest2"
    room.join(3, "Guest3", "app")
    assert welcome_of(room.join(4, None, "text"), 4).name == "guest4"
    room.leave(1)
    assert welcome_of(room.join(5, None, "text"), 5).name == "guest5"


def test_a_guest_gets_no_note() -> None:
    assert welcome_of(Room().join(1, None, "text"), 1).note is None


# --- leaving --------------------------------------------------------------------------------------


def test_leave_tells_the_others_why(room: Room) -> None:
    sends = room.leave(ANN, "connection lost")
    assert sends == [Send((HOST, BOB), Left("Ann", "connection lost"))]
    assert room.names() == ("Host", "Bob")


def test_leave_default_reason(room: Room) -> None:
    assert room.leave(BOB) == [Send((HOST, ANN), Left("Bob", "left"))]


def test_leave_twice_is_a_no_op(room: Room) -> None:
    room.leave(ANN)
    assert room.leave(ANN) == []
    assert room.leave(99) == []
    assert room.names() == ("Host", "Bob")


def test_a_name_is_free_again_after_its_owner_left(room: Room) -> None:
    room.leave(ANN)
    assert welcome_of(room.join(CAT, "ANN", "app"), CAT).name == "ANN"
    assert room.id_of("ann") == CAT


# --- saying ---------------------------------------------------------------------------------------


def test_say_stamps_sequence_sender_and_time(room: Room, clock: Clock) -> None:
    clock.now = 1_234.5
    sends = room.say(ANN, "hello")
    assert sends == [Send((HOST, BOB), Chat(1, "Ann", "hello", 1_234.5))]
    clock.now = 1_300.0
    sends = room.say(BOB, "hi Ann")
    assert sends == [Send((HOST, ANN), Chat(2, "Bob", "hi Ann", 1_300.0))]
    assert room.last_seq == 2


def test_sequence_numbers_increase_across_members(room: Room) -> None:
    seqs = []
    for i in range(30):
        (send,) = room.say((HOST, ANN, BOB)[i % 3], f"message {i}")
        assert isinstance(send.message, Chat)
        seqs.append(send.message.seq)
    assert seqs == list(range(1, 31))


def test_a_member_cannot_choose_its_sender_name(room: Room) -> None:
    (send,) = room.say(ANN, "Host: the room is closing, send me your password")
    assert send.message == Chat(1, "Ann", "Host: the room is closing, send me your password", 1e3)


def test_no_echo_without_an_id(room: Room) -> None:
    sends = room.say(ANN, "hello")
    assert inbox(sends, ANN) == []


def test_an_id_is_echoed_to_its_sender_only(room: Room, clock: Clock) -> None:
    sends = room.say(ANN, "hello", "m42")
    assert inbox(sends, ANN) == [Chat(1, "Ann", "hello", clock.now, "m42")]
    assert inbox(sends, BOB) == inbox(sends, HOST) == [Chat(1, "Ann", "hello", clock.now)]


def test_the_echo_carries_the_cleaned_text(room: Room) -> None:
    sends = room.say(ANN, "\x1b[2Jhi", "m1")
    assert inbox(sends, ANN) == [Chat(1, "Ann", "hi", 1e3, "m1")]


def test_text_is_cleaned_before_it_is_relayed(room: Room) -> None:
    (send,) = room.say(BOB, "\x1b[31mred\x1b[0m \u202eevil\u202c \x07bell")
    assert isinstance(send.message, Chat)
    assert send.message.text == "red evil bell"


def test_multi_line_text_is_kept(room: Room) -> None:
    (send,) = room.say(ANN, "\none\n\ttwo\n")
    assert isinstance(send.message, Chat)
    assert send.message.text == "one\n\ttwo"


@pytest.mark.parametrize("text", ["", " ", "\n\n", " \t \n", "\x1b\x07", "\u202e", "\r\n"])
def test_empty_messages_are_ignored(room: Room, text: str) -> None:
    assert room.say(ANN, text, "m1") == []
    assert room.last_seq == 0
    assert history_of(room, room.join(CAT, "Cat", "app"), CAT) == ()


def test_say_from_a_stranger_does_nothing(room: Room) -> None:
    assert room.say(99, "hello") == []
    assert room.last_seq == 0


def test_double_slash_sends_a_slash(room: Room) -> None:
    (send,) = room.say(ANN, "//who is there")
    assert send.message == Chat(1, "Ann", "/who is there", 1e3)
    (send,) = room.say(ANN, "//")
    assert send.message == Chat(2, "Ann", "/", 1e3)


# --- history --------------------------------------------------------------------------------------


def test_newcomers_get_the_last_messages(clock: Clock) -> None:
    room = Room(history=3, clock=clock)
    room.join(ANN, "Ann", "app")
    for i in range(5):
        clock.now = float(i)
        room.say(ANN, f"m{i}", f"id{i}")
    sends = room.join(BOB, "Bob", "app")
    assert welcome_of(sends, BOB).history == ()  # never inside the welcome: replayed after it
    assert history_of(room, sends, BOB) == (
        Chat(3, "Ann", "m2", 2.0),
        Chat(4, "Ann", "m3", 3.0),
        Chat(5, "Ann", "m4", 4.0),
    )


def test_default_history_is_twenty(room: Room) -> None:
    assert HISTORY == 20
    for i in range(25):
        room.say(ANN, f"line {i}")
    history = history_of(room, room.join(CAT, "Cat", "app"), CAT)
    assert [c.text for c in history] == [f"line {i}" for i in range(5, 25)]


def test_commands_do_not_enter_history(room: Room) -> None:
    room.say(ANN, "/who")
    room.say(ANN, "/help")
    room.say(ANN, "real")
    history = history_of(room, room.join(CAT, "Cat", "app"), CAT)
    assert history == (Chat(1, "Ann", "real", 1e3),)


def test_no_history_kept_when_asked_for_none() -> None:
    room = Room(history=0)
    room.join(ANN, "Ann", "app")
    room.say(ANN, "hi")
    assert history_of(room, room.join(BOB, "Bob", "app"), BOB) == ()


# --- commands -------------------------------------------------------------------------------------


def test_who_lists_members_to_the_asker_only(room: Room) -> None:
    assert room.say(BOB, "/who") == [Send((BOB,), Members(("Host", "Ann", "Bob")))]
    assert room.say(BOB, "/who is here") == [Send((BOB,), Members(("Host", "Ann", "Bob")))]
    assert room.last_seq == 0


def test_help_answers_the_asker_only(room: Room) -> None:
    assert room.say(ANN, "/help") == [Send((ANN,), Notice(HELP))]
    assert "/who" in HELP
    assert "/nick" in HELP
    assert "//" in HELP


def test_unknown_command_gets_a_hint(room: Room) -> None:
    ((to, msg),) = [(s.to, s.message) for s in room.say(ANN, "/dance wildly")]
    assert to == (ANN,)
    assert msg == Notice(f"Unknown command /dance. {HELP}")
    assert room.last_seq == 0


def test_nick_renames_and_tells_everyone_including_the_renamed(room: Room) -> None:
    sends = room.say(ANN, "/nick Annie")
    assert sends == [Send((HOST, ANN, BOB), Renamed("Ann", "Annie"))]
    assert room.names() == ("Host", "Annie", "Bob")
    assert room.id_of("annie") == ANN
    assert room.id_of("ann") is None
    (send,) = room.say(ANN, "hello")
    assert isinstance(send.message, Chat)
    assert send.message.sender == "Annie"


def test_nick_frees_the_old_name(room: Room) -> None:
    room.say(ANN, "/nick Annie")
    assert room.say(BOB, "/nick Ann") == [Send((HOST, ANN, BOB), Renamed("Bob", "Ann"))]


def test_nick_to_a_taken_name_is_refused(room: Room) -> None:
    assert room.say(ANN, "/nick bob") == [
        Send((ANN,), Error("name_taken", "The name bob is taken."))
    ]
    assert room.names() == ("Host", "Ann", "Bob")


def test_nick_may_change_only_the_case(room: Room) -> None:
    assert room.say(ANN, "/nick ANN") == [Send((HOST, ANN, BOB), Renamed("Ann", "ANN"))]
    assert room.names() == ("Host", "ANN", "Bob")
    assert room.id_of("ann") == ANN


@pytest.mark.parametrize("line", ["/WHO", "/Who", "/who\t"])
def test_commands_are_read_in_any_case(room: Room, line: str) -> None:
    assert [s.message for s in room.say(ANN, line)] == [Members(("Host", "Ann", "Bob"))]


def test_nick_after_a_tab(room: Room) -> None:
    assert room.say(ANN, "/nick\tAnnie") == [Send((HOST, ANN, BOB), Renamed("Ann", "Annie"))]


def test_nick_to_the_same_name_does_nothing(room: Room) -> None:
    assert room.say(ANN, "/nick  Ann ") == []


@pytest.mark.parametrize("arg", ["", "   ", "/root", "x" * 33, "Ann\tLee", "a\u2028b"])
def test_nick_to_an_invalid_name_is_refused(room: Room, arg: str) -> None:
    ((to, msg),) = [(s.to, s.message) for s in room.say(ANN, f"/nick {arg}")]
    assert to == (ANN,)
    assert isinstance(msg, Error)
    assert msg.code == "bad_name"
    assert msg.text.endswith("Usage: /nick NEW")
    assert room.names() == ("Host", "Ann", "Bob")


def test_nick_is_judged_after_cleaning(room: Room) -> None:
    # Control and formatting characters are removed before the command is read.
    assert room.say(ANN, "/nick \x1b[1mAn\u202ena") == [
        Send((HOST, ANN, BOB), Renamed("Ann", "Anna"))
    ]


# --- bye and the end ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["app", "text"])
def test_a_joiners_bye_ends_only_their_chat(clock: Clock, kind: str) -> None:
    room = Room(clock=clock)
    room.join(HOST, "Host", "local")
    room.join(ANN, "Ann", kind)
    room.join(BOB, "Bob", "app")
    msg_id = "m1" if kind == "app" else None
    sends = room.say(ANN, "Bye!", msg_id)
    chat = Chat(1, "Ann", "Bye!", clock.now)
    expected_ann: list[ServerMessage] = [Ended("You left the chat.")]
    if msg_id:
        expected_ann.insert(0, Chat(1, "Ann", "Bye!", clock.now, msg_id))
    assert inbox(sends, ANN) == expected_ann
    assert inbox(sends, BOB) == inbox(sends, HOST) == [chat, Left("Ann", "left")]
    assert ANN not in room
    assert not room.ended
    assert room.say(BOB, "still here") == [Send((HOST,), Chat(2, "Bob", "still here", 1e3))]


def test_bye_inside_a_sentence_is_just_a_message(room: Room) -> None:
    sends = room.say(ANN, "bye bye")
    assert [s.message for s in sends] == [Chat(1, "Ann", "bye bye", 1e3)]
    assert ANN in room


def test_bye_is_judged_on_what_people_see(room: Room) -> None:
    room.say(ANN, "\x1b[1mbye")  # shows as "bye": a bye
    assert ANN not in room
    room.say(BOB, "\u202ebye")  # shows as "bye": a bye
    assert BOB not in room


def test_the_hosts_bye_ends_the_room_for_everyone(room: Room) -> None:
    sends = room.say(HOST, "bye", "local-1")
    chat = Chat(1, "Host", "bye", 1e3)
    assert inbox(sends, HOST) == [Chat(1, "Host", "bye", 1e3, "local-1"), Ended()]
    assert inbox(sends, ANN) == inbox(sends, BOB) == [chat, Ended()]
    assert room.ended
    assert len(room) == 0


def test_after_the_end_nothing_more_happens(room: Room) -> None:
    room.say(HOST, "bye")
    assert room.say(ANN, "hello?") == []
    assert room.say(HOST, "hello?") == []
    assert room.leave(ANN) == []
    assert room.end() == []
    assert room.last_seq == 1
    assert room.join(CAT, "Cat", "app") == [Send((CAT,), Ended())]
    assert len(room) == 0


def test_end_tells_everyone_once(room: Room) -> None:
    assert room.end("Closing time.") == [Send((HOST, ANN, BOB), Ended("Closing time."))]
    assert room.ended
    assert room.end() == []


def test_default_end_reason() -> None:
    room = Room()
    room.join(ANN, "Ann", "app")
    assert room.end() == [Send((ANN,), Ended("The host ended the chat."))]


# --- a guest that sent its hello late -------------------------------------------------------------


def test_upgrade_gives_a_guest_its_name(room: Room) -> None:
    room.join(CAT, None, "text")
    sends = room.upgrade(CAT, "Cat")
    assert inbox(sends, HOST) == inbox(sends, ANN) == [Renamed("guest1", "Cat")]
    assert inbox(sends, CAT) == [Welcome("Cat", ("Host", "Ann", "Bob", "Cat"), (), None, "t3")]
    assert room.id_of("cat") == CAT
    assert room.id_of("guest1") is None


def test_upgrade_to_a_taken_name_gets_a_suffix(room: Room) -> None:
    room.join(CAT, None, "text")
    welcome = welcome_of(room.upgrade(CAT, "ann"), CAT)
    assert welcome.name == "ann (2)"
    assert welcome.note == "The name ann is taken; you are ann (2)."


def test_upgrade_with_a_refused_name_keeps_the_guest_name(room: Room) -> None:
    room.join(CAT, None, "text")
    sends = room.upgrade(CAT, "/x")
    assert inbox(sends, ANN) == []
    welcome = welcome_of(sends, CAT)
    assert welcome.name == "guest1"
    assert welcome.note is not None
    assert welcome.note.startswith("Name refused:")


def test_upgrade_of_a_stranger_does_nothing(room: Room) -> None:
    assert room.upgrade(99, "Cat") == []


def test_names_stay_unique_under_keys(room: Room) -> None:
    for i, name in enumerate(["Ann", "ANN", "ａｎｎ", "Ann (2)", "ann (2)", None, "guest1"]):
        room.join(10 + i, name, "app")
    keys = [name_key(n) for n in room.names()]
    assert len(keys) == len(set(keys))


def test_upgrade_may_take_a_name_whose_hold_has_expired(clock: Clock) -> None:
    room = Room(clock=clock, grace=10.0)
    room.join(ANN, "Ann", "app")
    room.leave(ANN, "connection lost", hold=True)
    room.join(CAT, None, "text")
    clock.now += 5.0
    assert welcome_of(room.upgrade(CAT, "Ann"), CAT).name == "Ann (2)"  # still held
    room.join(BOB, None, "text")
    clock.now += 6.0
    assert welcome_of(room.upgrade(BOB, "Ann"), BOB).name == "Ann"


# --- the same id again, and members coming back --------------------------------------------------


def test_a_repeated_id_is_acknowledged_again_but_not_delivered_again(room: Room) -> None:
    first = room.say(ANN, "hello", "m1")
    echo = inbox(first, ANN)[0]
    again = room.say(ANN, "hello", "m1")
    assert again == [Send((ANN,), echo)]
    assert room.last_seq == 1
    assert inbox(room.say(ANN, "hello", "m2"), BOB) == [Chat(2, "Ann", "hello", 1e3)]


def test_ids_are_per_member(room: Room) -> None:
    room.say(ANN, "from Ann", "m1")
    sends = room.say(BOB, "from Bob", "m1")
    assert inbox(sends, ANN) == [Chat(2, "Bob", "from Bob", 1e3)]


def test_a_dropped_members_name_is_held(room: Room) -> None:
    assert room.leave(ANN, "connection lost", hold=True) == [
        Send((HOST, BOB), Left("Ann", "connection lost"))
    ]
    assert room.names() == ("Host", "Bob")
    assert welcome_of(room.join(CAT, "ann", "app"), CAT).name == "ann (2)"
    assert inbox(room.say(BOB, "/nick ANN"), BOB) == [Error("name_taken", "The name ANN is taken.")]


def test_a_member_comes_back_with_its_token(room: Room, clock: Clock) -> None:
    room.say(BOB, "before", "b1")
    room.leave(ANN, "connection lost", hold=True)
    clock.now += 30
    room.say(BOB, "while away")
    sends = room.join(CAT, "ignored", "app", token="t1", last_seq=1)
    welcome = welcome_of(sends, CAT)
    assert welcome.resumed
    assert welcome.name == "Ann"
    assert welcome.token == "t1"
    assert history_of(room, sends, CAT) == (Chat(2, "Bob", "while away", clock.now),)
    assert welcome.note is None
    assert inbox(sends, BOB) == [Joined("Ann")]
    assert room.id_of("ann") == CAT
    (send,) = room.say(CAT, "back")
    assert send.message == Chat(3, "Ann", "back", clock.now)


def test_a_bye_is_not_held(room: Room) -> None:
    room.say(ANN, "bye")
    assert welcome_of(room.join(CAT, "Ann", "app"), CAT).name == "Ann"
    assert not welcome_of(room.join(4, None, "app", token="t1"), 4).resumed


def test_after_the_grace_period_the_name_is_free_and_the_token_is_spent(
    room: Room, clock: Clock
) -> None:
    room.leave(ANN, "connection lost", hold=True)
    clock.now += 61
    assert welcome_of(room.join(CAT, "Ann", "app"), CAT).name == "Ann"
    welcome = welcome_of(room.join(4, "Ann", "app", token="t1"), 4)
    assert not welcome.resumed
    assert welcome.name == "Ann (2)"


def test_coming_back_after_too_much_was_said_gets_a_note(clock: Clock) -> None:
    room = Room(history=2, resume_log=3, clock=clock, new_token=Tokens())
    room.join(ANN, "Ann", "app")
    room.join(BOB, "Bob", "app")
    room.leave(ANN, "connection lost", hold=True)
    for i in range(6):
        room.say(BOB, f"m{i}")
    sends = room.join(CAT, None, "app", token="t1", last_seq=0)
    assert [c.seq for c in history_of(room, sends, CAT)] == [4, 5, 6]
    assert welcome_of(sends, CAT).note == "3 earlier messages not shown: too old to send again."


# --- a read's plain lines, stamped together -------------------------------------------------------


LINES = [
    "hello",
    "  ",
    "",
    "bell\x07 and \x1b[31mred\x1b[0m",
    "a\u2028b",
    "/who",
    "//not a command",
    "x" * 61_441,
    "\u200bzero width",
    "é" * 20_000,
    "BYE!",
    "after the bye",
]


def _one_by_one(lines: list[str]) -> list[Send]:
    room = Room(clock=Clock(), new_token=Tokens())
    for member_id, name in ((HOST, "Host"), (ANN, "Ann"), (BOB, "Bob")):
        room.join(member_id, name, "text")
    return [send for line in lines for send in room.say(ANN, line)]


def test_plain_lines_stamped_together_are_what_say_gives_one_by_one() -> None:
    room = Room(clock=Clock(), new_token=Tokens())
    for member_id, name in ((HOST, "Host"), (ANN, "Ann"), (BOB, "Bob")):
        room.join(member_id, name, "text")
    sends: list[Send] = []
    plain: list[str] = []
    for line in LINES:  # as the host takes a read: plain lines together, the rest one by one
        text = room.plain_line(line)
        if text is not None:
            plain.append(text)
            continue
        sends += room.say_plain(ANN, plain)
        plain = []
        sends += room.say(ANN, line)
    sends += room.say_plain(ANN, plain)
    assert sends == _one_by_one(LINES)
    assert [s.message.seq for s in sends if isinstance(s.message, Chat)] == list(range(1, 8))


def test_plain_line_passes_only_chat_for_everyone() -> None:
    room = Room()
    assert room.plain_line("hello") == "hello"
    assert room.plain_line("bell\x07!") == "bell!"  # cleaned as say cleans it
    for line in ("", "   ", "/nick Bo", "//x", "bye", " Bye. ", "x" * 61_441, "\x07"):
        assert room.plain_line(line) is None


def test_a_chat_made_the_quick_way_is_the_chat_the_class_makes() -> None:
    import dataclasses

    from app.messages import Chat, new_chat

    quick, made = new_chat(7, "Ann", "hello", 12.5), Chat(7, "Ann", "hello", 12.5)
    assert quick == made
    assert hash(quick) == hash(made)
    assert repr(quick) == repr(made)
    assert vars(quick) == dataclasses.asdict(made)  # every field set, none extra
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.text = "changed"  # type: ignore[misc]


def test_a_log_extended_at_once_keeps_what_appending_one_by_one_keeps() -> None:
    from app.messages import Chat
    from app.roomlog import MemoryLog, chat_cost

    chats = [Chat(i, "Ann", "x" * (i * 37 % 200), 0.0) for i in range(1, 60)]
    for max_count, max_bytes in ((10, 1 << 20), (1000, 3000), (5, 1200), (0, 1000)):
        one, many = MemoryLog(max_count, max_bytes), MemoryLog(max_count, max_bytes)
        for chat in chats[:30]:
            one.append(chat)
        many.extend(chats[:30])
        for chat in chats[30:]:
            one.append(chat)
        many.extend(chats[30:])
        assert many.after(0, 100) == one.after(0, 100)
        assert (many.bytes, many.last_seq) == (one.bytes, one.last_seq)
    big = MemoryLog(100, chat_cost(chats[5]) + 10)  # one message too big for it: as append
    small = MemoryLog(100, chat_cost(chats[5]) + 10)
    big.extend(chats[:10])
    for chat in chats[:10]:
        small.append(chat)
    assert big.after(0, 100) == small.after(0, 100)
