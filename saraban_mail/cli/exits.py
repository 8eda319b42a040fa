"""The command line's exit codes: 0 all done, 2 an error to fix (one line on stderr),
3 done but something waits (one line each on stderr)."""

EXIT_OK, EXIT_ERROR, EXIT_PENDING = 0, 2, 3
