"""grader: the TA side of the course. It may import ``cvcourse``; never the reverse.

cli.py             ``cvgrade``: a thin layer over the pipeline's steps
pipeline/          the grading flow on nbgrader: collect, sandboxed autograde (locally
                   or on a Dask cluster), gradebook, feedback, export, report
checks/            the hidden checks of each assignment, and their harness
judge/             the process that runs the checks beside the student's kernel
reference.py       the torch references every graded function is compared with
notebooks.py       reading assignment notebooks: cells by grade_id, points, mistakes
lectures/          ``cvgrade release-lectures``: offline pages and slides
term/              the simulated term (``make demo``) and its planted mistakes
"""
