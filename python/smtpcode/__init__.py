"""smtpcode: what an SMTP server meant, and whether an address will take mail.

Every function here comes from the C core (smtpcode._smtpcode); this package adds only the
command-line interface (``python -m smtpcode``).
"""
from ._smtpcode import *  # noqa: F401,F403 -- the public API is the C module's
from ._smtpcode import __version__  # noqa: F401
from ._bounces import bounces  # noqa: F401 -- reading mailboxes around parse_bounce
