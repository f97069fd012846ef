# sqnet — the two commands a user needs are `make run` and `make test` (see README.md).
GO      ?= go
BIN     := bin/sqnet
# SwiftShader, the second software driver CI runs the suite on (see README "Devices and drivers").
SWIFTSHADER_ICD ?= $(or $(SQNET_SWIFTSHADER_ICD),$(abspath ../shared/swiftshader/vk_swiftshader_icd.json))

.PHONY: run test setup build build-mpi shaders check-shaders vet test-swiftshader bench

## run: install what is missing, build, list the Vulkan devices, self-test the chosen one, then the paper in
## miniature: train small naturally and with noisy-sq on MNIST, attack both (clean, FGSM, PGD, BPDA), write the report
run: build
	$(BIN) devices
	$(BIN) selftest --validate
	$(BIN) reproduce mnist --budget mini --out out/paper-mini

## test: install what is missing, check shaders are fresh, vet, run every test under the validation layer
test: setup check-shaders vet build
	@echo "== driver: $$($(BIN) devices --json | sed -n 's/^ *"name": "\(.*\)",$$/\1/p' | head -1) (VK_ICD_FILENAMES=$${VK_ICD_FILENAMES:-default})"
	SQNET_VALIDATION=1 $(GO) test -count=1 -timeout 30m ./...

## test-swiftshader: the same suite on SwiftShader ($(SWIFTSHADER_ICD)); SQNET_SWIFTSHADER=optional skips it when absent.
## -short: SwiftShader runs GEMMs ~20× slower than lavapipe, so the end-to-end tests (training, attacks, the CLI) run
## on fewer images and steps there — every test still runs and asserts. Its timeout is 50m, not 30m: cmd/sqnet alone
## took 1368–1422 s on the 2-core CI machine at the last stops, too close to 30 minutes for a guard against hangs
## (the CI limit is the whole run's 90 minutes; the SwiftShader pass took ~24 of them).
test-swiftshader: setup build
	@if [ ! -f "$(SWIFTSHADER_ICD)" ]; then \
	  echo "test-swiftshader: no SwiftShader ICD at $(SWIFTSHADER_ICD) (set SQNET_SWIFTSHADER_ICD)"; \
	  [ "$$SQNET_SWIFTSHADER" = optional ]; exit $$?; fi
	@echo "== driver: SwiftShader ($(SWIFTSHADER_ICD))"
	VK_ICD_FILENAMES=$(SWIFTSHADER_ICD) SQNET_VALIDATION=1 $(GO) test -count=1 -short -timeout 50m ./...

setup:
	@scripts/setup

build: setup
	$(GO) build -o $(BIN) ./cmd/sqnet

## build-mpi: bin/sqnet-mpi, with `train --dist mpi` (needs Open MPI: apt-get install openmpi-bin libopenmpi-dev)
build-mpi: setup
	$(GO) build -tags mpi -o bin/sqnet-mpi ./cmd/sqnet

## shaders: recompile changed GLSL to SPIR-V (needs glslc and spirv-val)
shaders:
	$(GO) generate ./shaders

check-shaders:
	$(GO) run ./shaders/gen -dir shaders -check

vet:
	$(GO) vet ./...
	@if pkg-config --exists ompi-c 2>/dev/null; then echo "$(GO) vet -tags mpi ./dist"; $(GO) vet -tags mpi ./dist; fi

## bench: Vulkan runtime benchmarks (dispatch overhead, transfer bandwidth) on the chosen device
bench: build
	$(GO) test -run '^$$' -bench . ./vk/
