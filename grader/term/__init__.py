"""The simulated term: a class of simulated students, graded end to end (``make demo``).

run.py             ``python -m grader.term``: release, submit, grade, check every grade
simulate.py        the simulated class (and a synthetic class of any size)
planted/           the planted mistakes, per assignment, and what each must lose
"""
