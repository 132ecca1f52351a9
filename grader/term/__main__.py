"""``python -m grader.term``: run the simulated term (:mod:`grader.term.run`)."""

import sys

from grader.term.run import main

sys.exit(main())
