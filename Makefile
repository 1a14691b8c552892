# Two commands do everything on a fresh clone:
#   make demo   set up the environment, then run the synthetic end-to-end demo
#   make test   set up the environment, then run the whole test suite
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: env test demo clean

env:
	bash tools/setup_env.sh

test: env
	$(PY) -m pytest -n 2 --timeout 1800 $(PYTEST_ARGS)

demo: env
	$(PY) -m projects.toy_cityscapes.demo

clean:
	rm -rf .venv build mmibs.egg-info mmibs/.mim
