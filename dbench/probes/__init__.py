"""Downstream probes: does the representation let a simple model learn each factor from few labels?

* :mod:`dbench.probes.downstream` — disentanglement_lib's downstream task (metric ``downstream_task``);
* :mod:`dbench.probes.few_shot` — k-shot linear and k-NN probes (metric ``few_shot``);
* :mod:`dbench.probes.summaries` — sample efficiency and area under the learning curve;
* :mod:`dbench.probes.plots` — learning-curve PNGs.

Submodules are imported on use, so ``import dbench.probes`` stays cheap.
"""
