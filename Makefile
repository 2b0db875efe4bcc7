.PHONY: dev test stop bench

# A local ERPNext site with this app and demo data on http://127.0.0.1:8000
dev:
	bash scripts/dev.sh

# The whole test suite on a fresh throwaway site, then the linters (ruff, semgrep)
test:
	bash scripts/test.sh

stop:
	bash scripts/stop.sh

# The side-by-side benchmark against the dev site (results in benchmarks/results/)
bench:
	bash scripts/bench.sh
