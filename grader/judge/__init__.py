"""The judge: the process of the grader's that owns every grade.

Student code runs in its (sandboxed) kernel; the hidden checks of ``grader.checks`` run
here, in the autograde worker, and drive the student's class or function through the
channel of :mod:`cvcourse.judge_link`. The pieces:

- :mod:`grader.judge.remote`: proxies for the kernel's objects, and the connection that
  carries requests and the kernel's answers (arrays by value, under deadlines);
- :mod:`grader.judge.session`: one judge per notebook run: listens on a Unix socket,
  accepts a connection only for the graded cell that is running, runs that cell's check
  once, and records its points and message;
- :mod:`grader.judge.execute`: the nbgrader preprocessors that run the notebook beside a
  judge and then set every graded cell's output, and so its score, from the judge's record.
"""
