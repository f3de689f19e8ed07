// auguryCanary: a Jenkins shared-library step that starts an Augury analysis of a canary,
// waits for its verdict and passes or fails the build with it.
//
//   @Library('augury') _     // a shared library whose root is integrations/jenkins
//   ...
//   environment { AUGURY_TOKEN = credentials('augury-api-token') }
//   ...
//   def result = auguryCanary(
//       server: 'http://augury.augury.svc.cluster.local:8080',   // or env AUGURY_SERVER
//       key: "checkout@${env.GIT_COMMIT}",
//       baseline: ['service.name': 'checkout', 'service.version': '1.4.1'],
//       canary: ['service.name': 'checkout', 'service.version': env.GIT_COMMIT])
//   echo "Augury: ${result.verdict} ${result.url}"
//
// Other settings: model (http-red), interval (30s), lifetime (10m), timeout (15m), poll
// (10s), allowInconclusive (false: an inconclusive, cancelled or timed-out analysis
// fails the build; true: it marks the build unstable), auguryBin ('augury', which must be
// on the agent's PATH). The token is read from AUGURY_TOKEN.
//
// Returns [verdict: 'pass', id: ..., url: ..., exitCode: 0] on a pass (and on an
// allowed inconclusive); otherwise stops the build with `error`: exit 1 the canary
// failed, 3 inconclusive, 2 a request the daemon refused, 4 daemon unreachable.

def call(Map config = [:]) {
    String server = config.server ?: env.AUGURY_SERVER
    if (!server) {
        error 'auguryCanary: give server: (the Augury daemon URL) or set AUGURY_SERVER'
    }
    if (!config.key) {
        error 'auguryCanary: give key: (an idempotency key, e.g. "checkout@${env.GIT_COMMIT}")'
    }
    String baseline = scopeLines('baseline', config.baseline)
    String canary = scopeLines('canary', config.canary)
    String report = ".augury-verdict-${env.BUILD_NUMBER ?: 'local'}"
    int code
    withEnv([
        "AUGURY_SERVER=${server}",
        "AUGURY_BIN=${config.auguryBin ?: 'augury'}",
        "AUGURY_REPORT=${report}",
        "IN_KEY=${config.key}",
        "IN_MODEL=${config.model ?: 'http-red'}",
        "IN_BASELINE=${baseline}",
        "IN_CANARY=${canary}",
        "IN_INTERVAL=${config.interval ?: '30s'}",
        "IN_LIFETIME=${config.lifetime ?: '10m'}",
        "IN_TIMEOUT=${config.timeout ?: '15m'}",
        "IN_POLL=${config.poll ?: '10s'}",
    ]) {
        // Values travel in the environment, never inside the script text.
        code = sh(returnStatus: true, label: 'Augury canary verdict', script: '''#!/bin/bash
args=(analyze --key "$IN_KEY" --model "$IN_MODEL" --interval "$IN_INTERVAL" --lifetime "$IN_LIFETIME")
while IFS= read -r pair; do
  if [ -n "$pair" ]; then args+=(--baseline "$pair"); fi
done <<< "$IN_BASELINE"
while IFS= read -r pair; do
  if [ -n "$pair" ]; then args+=(--canary "$pair"); fi
done <<< "$IN_CANARY"
: > "$AUGURY_REPORT.txt"
id=$("$AUGURY_BIN" "${args[@]}")
code=$?
if [ "$code" -eq 0 ]; then
  "$AUGURY_BIN" wait "$id" --timeout "$IN_TIMEOUT" --poll "$IN_POLL" > "$AUGURY_REPORT.txt"
  code=$?
  cat "$AUGURY_REPORT.txt"
fi
verdict=$(sed -n '1s/^verdict: \\([A-Z]*\\).*/\\1/p' "$AUGURY_REPORT.txt" | tr '[:upper:]' '[:lower:]')
printf '%s\\n%s\\n' "$verdict" "$id" > "$AUGURY_REPORT"
exit "$code"
''')
    }
    List<String> lines = readFile(report).readLines()
    String id = lines.size() > 1 ? lines[1].trim() : ''
    String verdict = lines ? lines[0].trim() : ''
    if (!verdict) {
        verdict = code == 3 ? 'timed-out' : 'error'
    }
    Map result = [
        verdict: verdict,
        id: id,
        url: id ? "${server.replaceAll('/+$', '')}/api/v1/analyses/${id}".toString() : '',
        exitCode: code,
    ]
    switch (code) {
        case 0:
            echo "Augury: the canary passed (${result.url})"
            return result
        case 1:
            error "Augury: the canary failed (${result.url})"
            break
        case 3:
            if (config.allowInconclusive) {
                unstable "Augury: the analysis ended ${verdict}; allowed by allowInconclusive (${result.url})"
                return result
            }
            error "Augury: the analysis ended ${verdict} (${result.url})"
            break
        case 2:
            error 'Augury refused the request (see the message above)'
            break
        default:
            error "Augury could not be reached (exit ${code})"
    }
}

// NAME=VALUE lines of a scope given as a map or a list of 'NAME=VALUE' strings.
private String scopeLines(String side, Object scope) {
    List<String> pairs
    if (scope instanceof Map) {
        pairs = scope.collect { k, v -> "${k}=${v}".toString() }
    } else if (scope instanceof Collection) {
        pairs = scope.collect { it.toString() }
    } else {
        pairs = []
    }
    if (!pairs) {
        error "auguryCanary: give ${side}: a map of scope name to value, e.g. ['service.version': '1.4.1']"
    }
    if (pairs.any { it.contains('\n') }) {
        error "auguryCanary: a ${side} value holds a new line"
    }
    return pairs.join('\n')
}
