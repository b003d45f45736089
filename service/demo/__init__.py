"""The demo: every explanation method side by side on a few samples of each bundled model, with its fidelity
scores and precision, on one page that reads at a laptop's width (``out/demo/index.html``) and in
``out/demo/summary.json``.

``methods`` says which methods run with which demo-sized parameters, ``sample`` explains one sample with every
method through the Python client, ``page`` turns the results into the template's context, ``run`` is the command.
"""

from service.demo.run import run_demo

__all__ = ["run_demo"]
