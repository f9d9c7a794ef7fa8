"""The `smtpcode` command: the parser, the subcommands' registration and the exit codes.

Exit codes: 0 everything was checked (whatever the verdicts), 2 usage error (argparse's
convention), 1 input unreadable or another failure. A user error never prints a traceback.
"""
import argparse
import os
import sys

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

EPILOG = """\
exit status:
  0  done: every input was checked (whatever the verdicts)
  2  usage error (unknown option, missing --from/--helo, bad value)
  1  input unreadable, a lookup or decode that failed, or another failure

Run 'smtpcode COMMAND --help' for a command's options."""


class Failure(Exception):
    """A failure the user can act on (exit 1): printed as one line, no traceback."""


def _number(kind, low, low_ok, what):
    def parse(s):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not %s" % (s, what)) from None
        if v != v or v < low or (v == low and not low_ok):   # v != v: NaN
            raise argparse.ArgumentTypeError("%r is not %s" % (s, what))
        return v
    parse.__name__ = what                 # argparse names the type in its messages
    return parse


positive_int = _number(int, 1, True, "a positive integer")
_port_low = _number(int, 1, True, "a port number")
positive_float = _number(float, 0.0, False, "a positive number of seconds")
seconds = _number(float, 0.0, True, "a number of seconds (0 or more)")


def port(s):
    v = _port_low(s)
    if v > 65535:
        raise argparse.ArgumentTypeError("%r is not a port number" % s)
    return v


def dns_servers(values):
    """--dns may be repeated or comma-separated; the engine takes one comma-separated list."""
    if not values:
        return None
    return ",".join(p.strip() for v in values for p in v.split(",") if p.strip())


def build_parser():
    import smtpcode
    from . import bounces, decode, resolve, verify

    p = argparse.ArgumentParser(
        prog="smtpcode", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Decode SMTP replies and bounces; verify mail addresses by SMTP without "
                    "sending mail.")
    p.add_argument("--version", action="version", version="%(prog)s " + smtpcode.__version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    verify.add_parser(sub)
    decode.add_decode_parser(sub)
    decode.add_explain_parser(sub)
    resolve.add_parser(sub)
    bounces.add_parser(sub)
    return p


def _quiet_stdout():
    # The reader went away (`smtpcode ... | head`): point stdout at /dev/null so that the
    # interpreter's final flush does not complain a second time.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except Failure as e:
        sys.stderr.write("smtpcode %s: error: %s\n" % (args.command, e))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        # Leave at once: a verify engine thread may be waiting in C for a long timer, and the
        # interpreter would wait for it at exit. Records already written are flushed first.
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except (OSError, ValueError):
                pass
        sys.stderr.write("\nsmtpcode %s: interrupted\n" % args.command)
        sys.stderr.flush()
        os._exit(130)
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_FAILURE
