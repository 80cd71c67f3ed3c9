"""Leave a reference-reader script without the interpreter's finalization.

Python icechunk keeps a Tokio runtime whose worker threads are never told to stop: when
one is still running as the interpreter tears down, the process can abort after every
check has passed (seen in CI: check_repo.py printed "OK:" and exited non-zero; the
PyO3 pattern is PyO3/pyo3-async-runtimes#40). A script's verdict is what `main` said, so
we flush and leave with that code, before finalization can race the runtime.
"""
import os
import sys
import traceback


def run(main):
    code = 0
    try:
        main()
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
