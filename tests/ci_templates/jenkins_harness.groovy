// Runs a Jenkins shared-library step (a vars/*.groovy file) the way a pipeline calls it,
// with the pipeline steps it uses stood in for: `sh` runs the script for real (a script
// with a shebang directly, else `sh -xe`, as Jenkins' durable tasks do) in the workspace
// with the environment `withEnv` gives; `error` stops the "build"; `echo`, `unstable` and
// `readFile` do what Jenkins does with them.
//
//   groovy jenkins_harness.groovy STEP.groovy CONFIG.json WORKSPACE
//
// Prints one JSON object on stdout: {"result": <what the step returned>} or
// {"error": <the message the build failed with>}, and the "events" (echo, unstable).
import groovy.json.JsonOutput
import groovy.json.JsonSlurper

class BuildFailed extends RuntimeException {
    BuildFailed(String message) { super(message) }
}

def stepFile = new File(args[0])
def config = new JsonSlurper().parse(new File(args[1]))
def workspace = new File(args[2])
def envStack = [new HashMap<String, String>(System.getenv())]
envStack[0].put('BUILD_NUMBER', '7')
envStack[0].put('WORKSPACE', workspace.path)
def events = []
def scripts = 0

def binding = new Binding()
binding.setVariable('env', envStack[0])
binding.setVariable('echo', { Object message ->
    events << [echo: message.toString()]
    System.err.println(message)
})
binding.setVariable('error', { Object message -> throw new BuildFailed(message.toString()) })
binding.setVariable('unstable', { Object message ->
    events << [unstable: (message instanceof Map ? message.message : message).toString()]
})
binding.setVariable('readFile', { Object file ->
    new File(workspace, (file instanceof Map ? file.file : file).toString()).getText('UTF-8')
})
binding.setVariable('withEnv', { List overrides, Closure body ->
    def env = new HashMap<String, String>(envStack[-1])
    overrides.each { entry ->
        def text = entry.toString()
        def eq = text.indexOf('=')
        env.put(text.substring(0, eq), text.substring(eq + 1))
    }
    envStack << env
    try {
        return body()
    } finally {
        envStack.remove(envStack.size() - 1)
    }
})
binding.setVariable('sh', { Object arg ->
    Map options = arg instanceof Map ? arg : [script: arg.toString()]
    def file = new File(workspace, ".jenkins-script-${++scripts}.sh")
    file.setText(options.script.toString(), 'UTF-8')
    file.setExecutable(true)
    def command = options.script.toString().startsWith('#!') ? [file.path] : ['sh', '-xe', file.path]
    def env = envStack[-1].collect { k, v -> "${k}=${v}".toString() }
    def process = command.execute(env, workspace)
    def stdout = new ByteArrayOutputStream()
    // The script's output goes to the console (stderr here), or is returned.
    process.waitForProcessOutput(options.returnStdout ? stdout : System.err, System.err)
    int code = process.exitValue()
    if (options.returnStatus) {
        return code
    }
    if (code != 0) {
        throw new BuildFailed("script returned exit code ${code}")
    }
    return options.returnStdout ? stdout.toString('UTF-8') : null
})

def step = new GroovyShell(binding).parse(stepFile)
def outcome = [:]
try {
    outcome.result = step.call(config)
} catch (BuildFailed failed) {
    outcome.error = failed.message
}
outcome.events = events
println JsonOutput.toJson(outcome)
