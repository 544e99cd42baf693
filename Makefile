# cv-access: `make dev` runs it locally with no AWS; `make test` runs every test.
# `make build` is Netlify's build command (site + Linux Lambda binaries; the
# site alone when CV_API_ORIGIN names the AWS target's HTTP API).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

HUGO_VERSION := 0.165.0
STATICCHECK_VERSION := v0.8.2
# Amazon's Lambda Runtime Interface Emulator, built from the Go module proxy
# for the infra tests (the runtime API of Amazon's own base images), into a
# folder named by its version so a new pin builds anew.
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
RIE := $(CURDIR)/.local/rie/$(RIE_VERSION)/aws-lambda-rie
# The AWS provider version infra/versions.tf pins; the tests install it from
# a local filesystem mirror (the machine image ships one at /opt/tf-plugins;
# CV_TF_PROVIDER_MIRROR names another), never from a registry.
TF_AWS_PROVIDER := $(shell sed -n 's/^ *version *= *"\([0-9.]*\)"$$/\1/p' infra/versions.tf)
TERRAFORMRC := $(CURDIR)/.local/terraformrc
FUNCTIONS := request-access verify-access owner
LOCAL_BIN := $(CURDIR)/.local/bin

# Hugo: the one on PATH if it is exactly the pinned version, else a pinned
# copy built from the Go module proxy into .local/bin (about two minutes,
# once). Netlify installs the same version from HUGO_VERSION in netlify.toml.
HUGO := $(shell if command -v hugo >/dev/null 2>&1 && hugo version 2>/dev/null | grep -q 'v$(HUGO_VERSION)[-+ ]'; then command -v hugo; else echo '$(LOCAL_BIN)/hugo'; fi)

.PHONY: help dev site build functions lambda-packages test fuzz screenshots lint vet fmt-check tf-check emulators netlify-dev aws-setup aws-check test-tools infra-tools clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

dev: site ## Run the site and the three functions on http://127.0.0.1:8888 (embedded backend, no AWS)
	go run ./functions-src/cmd/cv-dev

site: $(HUGO) ## Build the Hugo site into site/public
	$(HUGO) --source site --gc --minify --cleanDestinationDir --logLevel error >/dev/null
	@echo "site built into site/public"

# With CV_API_ORIGIN set (the AWS target) the functions run on AWS Lambda
# and the site proxies /api/<name> there (site/layouts/home.redirects), so
# the deploy carries no function: Netlify stops building deploys that hold
# Go (Lambda compatibility mode) functions from 2027-06-01.
# $(value ...) and the shell's own "$$CV_API_ORIGIN": make never expands
# what the variable holds.
ifneq ($(strip $(value CV_API_ORIGIN)),)
build: site
	@rm -f $(addprefix netlify/functions/,$(FUNCTIONS))
	@left=$$(ls -A netlify/functions | grep -vx '.gitkeep' || true); \
	if [ -n "$$left" ]; then echo "netlify/functions must hold no function on the AWS target (CV_API_ORIGIN is set); remove: $$left"; exit 1; fi
	@echo "CV_API_ORIGIN is set (target aws): built the site only; netlify/functions holds no function, /api/* is proxied to $$CV_API_ORIGIN"
else
build: site functions ## Netlify's build: the site and the Linux Lambda binaries (the site only when CV_API_ORIGIN is set)
endif

# How a function is compiled for Lambda, on either target.
# No VCS stamp and no build id: the same code gives the same binary (and
# the same package, so Terraform uploads only a change) on any machine.
GO_LAMBDA_BUILD := CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -buildvcs=false -ldflags="-s -w -buildid="

functions: ## Compile the functions into netlify/functions/<name>
	@for fn in $(FUNCTIONS); do \
	  echo "go build netlify/functions/$$fn"; \
	  GOOS=linux GOARCH=amd64 $(GO_LAMBDA_BUILD) -o netlify/functions/$$fn ./functions-src/$$fn; \
	done

# Target aws (infra/ with deploy_target = "aws"): one zip per function for
# Lambda's provided.al2023 runtime, for LAMBDA_ARCH (arm64 or x86_64, as
# infra/'s lambda_architecture).
LAMBDA_ARCH ?= arm64
lambda-packages: ## Target aws: build .local/lambda/<arch>/<name>.zip for AWS Lambda (LAMBDA_ARCH=arm64, the default, or x86_64)
	@case "$(LAMBDA_ARCH)" in arm64) goarch=arm64;; x86_64) goarch=amd64;; *) echo "LAMBDA_ARCH must be arm64 or x86_64"; exit 1;; esac; \
	for src in $(FUNCTIONS) lambda/notify-access; do \
	  fn=$$(basename $$src); \
	  echo "go build .local/lambda/$(LAMBDA_ARCH)/$$fn.zip"; \
	  GOOS=linux GOARCH=$$goarch $(GO_LAMBDA_BUILD) -o .local/lambda/$(LAMBDA_ARCH)/$$fn/bootstrap ./functions-src/$$src; \
	  go run ./functions-src/cmd/cv-package -o .local/lambda/$(LAMBDA_ARCH)/$$fn.zip .local/lambda/$(LAMBDA_ARCH)/$$fn/bootstrap; \
	done

test: site functions test-tools lint ## Run every test: unit, contract (embedded and DynamoDB Local), infra/ on moto, end to end, compiled functions, pages, fuzzing
	CV_REQUIRE_SITE=1 CV_REQUIRE_BUILD=1 CV_REQUIRE_EMULATORS=1 CV_REQUIRE_NETLIFY=1 CV_REQUIRE_BROWSER=1 CV_REQUIRE_INFRA=1 \
	  CV_TERRAFORMRC=$(TERRAFORMRC) CV_RIE=$(RIE) go test -race -count=1 -timeout 30m ./...
	@$(MAKE) --no-print-directory fuzz

FUZZTIME ?= 10s
FUZZ_TARGETS := FuzzRequestAccess:internal/api FuzzVerifyAccess:internal/api FuzzNormalizeEmail:internal/access FuzzVerify:internal/proxysign
# Go 1.26's fuzzing coordinator can end a run at the -fuzztime boundary with
# a bare "context deadline exceeded" and no failing input (go.dev/issue/75804,
# fixed in Go 1.27). Such a run is tried once more; a run that writes a
# failing input, or fails any other way, fails at once.
fuzz: ## Fuzz request parsing and validation, verify input, email normalising and proxy signatures (FUZZTIME each, default 10s)
	@for spec in $(FUZZ_TARGETS); do \
	  target=$${spec%%:*}; pkg=./functions-src/$${spec#*:}; \
	  for try in 1 2; do \
	    echo "go test -run='^$$' -fuzz='^$$target$$' -fuzztime=$(FUZZTIME) $$pkg"; \
	    if out=$$(go test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) $$pkg 2>&1); then echo "$$out" | tail -1; break; fi; \
	    echo "$$out"; \
	    if [ $$try = 1 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
	      echo "$$target: the fuzzing coordinator's deadline race (go.dev/issue/75804), no failing input: running it once more"; continue; \
	    fi; \
	    exit 1; \
	  done; \
	done

# The AWS-side tests run Amazon's DynamoDB Local (Java 17), aws-ses-v2-local
# and netlify-cli (Node) from node_modules; the page tests drive Debian's
# chromium with axe-core from node_modules. `.ci/run` installs Java, Node
# and chromium on a fresh machine.
test-tools: node_modules infra-tools
	@command -v java >/dev/null || { echo "make test needs Java 17 for DynamoDB Local: apt-get install openjdk-17-jre-headless"; exit 1; }
	@test -x /usr/bin/chromium || [ -n "$$CV_CHROMIUM" ] || { echo "make test needs Debian's chromium for the page tests: apt-get install chromium"; exit 1; }

# infra/ is applied to moto (an AWS look-alike with IAM enforcement) with
# Terraform; both ship on the machine image, PyPI and the Terraform registry
# are not reachable from it.
infra-tools: $(TERRAFORMRC) $(RIE)
	@command -v moto_server >/dev/null || { echo "make test needs moto_server (moto with its server extra; the machine image ships it) for the infra tests"; exit 1; }

# Written again whenever the pinned provider or the Makefile changes.
$(TERRAFORMRC): infra/versions.tf Makefile
	@command -v terraform >/dev/null || { echo "make test needs Terraform >= 1.11 on PATH for the infra tests (the machine image ships it)"; exit 1; }
	@mirror=""; \
	for d in $${CV_TF_PROVIDER_MIRROR:-} /opt/tf-plugins /usr/share/terraform/plugins /usr/local/share/terraform/plugins $$HOME/.terraform.d/plugins; do \
	  p=$$d/registry.terraform.io/hashicorp/aws; \
	  if [ -d "$$p/$(TF_AWS_PROVIDER)/linux_amd64" ] || [ -f "$$p/terraform-provider-aws_$(TF_AWS_PROVIDER)_linux_amd64.zip" ]; then mirror=$$d; break; fi; \
	done; \
	[ -n "$$mirror" ] || { echo "make test needs a local filesystem mirror of hashicorp/aws $(TF_AWS_PROVIDER) for linux_amd64 (no registry is reachable): the machine image has one at /opt/tf-plugins; set CV_TF_PROVIDER_MIRROR to another's root"; exit 1; }; \
	mkdir -p $(dir $@); \
	printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n' "$$mirror" > $@; \
	echo "Terraform provider mirror: $$mirror (written to $@)"

$(RIE):
	GOBIN=$(dir $@) go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

screenshots: site ## Save a screenshot of each step into docs/screenshots (for the README)
	CV_SCREENSHOTS=$(CURDIR)/docs/screenshots go test -count=1 -run 'TestHappyPath|TestWithoutJavaScript|TestRateLimited|TestOwnerFullPath' ./functions-src/internal/browsertest

# A node_modules that is a link (a git worktree sharing another checkout's)
# is left alone: npm ci through a link empties the folder it points to.
node_modules: package.json package-lock.json
	@if [ -L node_modules ]; then echo "node_modules links to $$(readlink node_modules): not reinstalled through the link (run npm ci there if package-lock.json changed)"; exit 0; fi; \
	command -v npm >/dev/null || { echo "make test needs Node.js 20 and npm: apt-get install nodejs npm"; exit 1; }; \
	echo "npm ci --no-audit --no-fund"; npm ci --no-audit --no-fund; touch node_modules

emulators: node_modules ## Run DynamoDB Local, SES, SNS and S3 stand-ins, set up like production; prints the env to use
	go run ./functions-src/cmd/cv-emulators

netlify-dev: site node_modules ## Run `netlify dev` (offline) on :8888; uses .local/emulators.env from `make emulators` if present
	@if [ -f .local/emulators.env ]; then echo "using .local/emulators.env"; set -a; . .local/emulators.env; set +a; fi; \
	export CV_SITE_URL=$${CV_SITE_URL:-http://localhost:8888} CV_OTP_SECRET=$${CV_OTP_SECRET:-$$(cat .local/otp-secret 2>/dev/null || openssl rand -hex 32)}; \
	npx netlify dev --offline --internal-disable-edge-functions --port 8888

aws-setup: ## Create the tables and private bucket (idempotent) where CV_* points; CV=path/to/cv.pdf uploads your CV
	go run ./functions-src/cmd/cv-setup $(if $(CV),-cv "$(CV)")

aws-check: ## With the functions' keys (CV_AWS_* as set in Netlify): test each AWS permission they use; changes nothing
	go run ./functions-src/cmd/cv-setup check

lint: fmt-check vet tf-check ## gofmt, go vet, staticcheck, terraform fmt and validate
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# validate needs the provider: init (no backend) from the mirror into
# infra/.terraform, which git ignores.
tf-check: $(TERRAFORMRC)
	terraform fmt -check -diff -recursive infra
	TF_CLI_CONFIG_FILE=$(TERRAFORMRC) terraform -chdir=infra init -backend=false -input=false -no-color >/dev/null
	TF_CLI_CONFIG_FILE=$(TERRAFORMRC) terraform -chdir=infra validate -no-color

vet:
	go vet ./...

fmt-check:
	@out=$$(gofmt -l functions-src); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

$(LOCAL_BIN)/hugo:
	@echo "Building Hugo v$(HUGO_VERSION) into .local/bin (once; about two minutes)..."
	GOBIN=$(LOCAL_BIN) go install github.com/gohugoio/hugo@v$(HUGO_VERSION)

clean: ## Remove build outputs (keeps .local data: the store, outbox and dev secret)
	rm -rf site/public site/resources netlify/functions/request-access netlify/functions/verify-access
