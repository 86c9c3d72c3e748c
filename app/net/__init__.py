"""Floor 2: asyncio networking. `Host` serves a room; `Joiner` connects to one."""

from app.address import DEFAULT_PORT
from app.net.common import Post
from app.net.host import Host, HostOptions, local_addresses
from app.net.peer import Joiner, JoinOptions

__all__ = [
    "DEFAULT_PORT",
    "Host",
    "HostOptions",
    "JoinOptions",
    "Joiner",
    "Post",
    "local_addresses",
]
