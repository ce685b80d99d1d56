# Shortcuts for the two README commands.
.PHONY: run test clean
run:
	./scripts/run.sh
test:
	./scripts/test.sh
clean:
	rm -rf build build-asan
