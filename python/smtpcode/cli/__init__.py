"""The `smtpcode` command line (python -m smtpcode). One module per concern: main (parser, exit
codes), verify, decode (and explain), resolve, formats (records and writers), progress (bar and
summary), logparse (Postfix/Exim log lines)."""
