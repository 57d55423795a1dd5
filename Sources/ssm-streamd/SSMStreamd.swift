import ArgumentParser
import SSM
import SSMService
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's command line: argument parsing and wiring only (the runtime is SSMService.Daemon).
@main
enum Entry {
    static func main() {
        ProcessSetup.pinBLASCoreForSteadyState()
        SSMStreamd.main()
    }
}

struct SSMStreamd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssm-streamd",
        abstract: "Run a state-space model over a live audio or sensor stream, reporting to journald and a control socket.",
        discussion: """
        Reads the TOML configuration (keys in the README, "Configuration"), opens the source \
        (ALSA, a file or a pipe), and runs until SIGTERM or SIGINT; SIGHUP reloads the \
        configuration and the model. Under systemd it reports READY=1, STATUS= and WATCHDOG=1, \
        logs to the journal and accepts a socket-activated control socket.

        Exit codes: 0 stopped or input ended; 64 usage; 65 bad stream data; 66 source cannot \
        be opened; 67 bad model file; 73 output or socket cannot be created; 74 read or write \
        failed; 78 configuration error.

        Examples:
          ssm-streamd -c /etc/ssm-stream/ssm-streamd.toml --check
          ssm-streamd -c configs/demo.toml --set source.realtime=true
          ssm-streamd -c d.toml --set source.path=in.wav --set model=m.safetensors
        """,
        version: Daemon.version
    )

    @Option(name: [.short, .long], help: "Configuration file.")
    var config = "/etc/ssm-stream/ssm-streamd.toml"

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a configuration key (repeatable), named as in the file: source.path=in.wav, model=m.safetensors, events.threshold=0.7. Paths are relative to the current directory; kept across reloads.", valueName: "key=value"))
    var overrides: [String] = []

    @Flag(help: "Check the configuration and the model, print what would run, and exit (0 if usable).")
    var check = false

    func run() throws {
        let c: DaemonConfig
        do { c = try DaemonConfig.load(path: config, overrides: overrides) } catch {
            warn("ssm-streamd: \(error.message)")
            throw ExitCode(DaemonFailure.config)
        }
        if check {
            do { try Daemon.preflight(c) } catch {
                warn("ssm-streamd: \(error.message)")
                throw ExitCode(error.code)
            }
            do {
                let model = try ModelFile.load(path: c.modelPath)
                let s = model.spec
                print("config \(config): ok")
                print("model \(c.modelPath): \(s.task.rawValue), \(s.dInput) → \(s.dOutput) channel(s) at \(s.sampleRate) Hz, \(s.allBlocks.map { $0.layer.family.rawValue }.joined(separator: ", "))")
                print("source: \(c.source.kind.rawValue) \(c.source.kind == .alsa ? c.source.device : c.resolve(c.source.path))")
                if s.task == .filter { print("output: \(c.output.kind.rawValue) \(c.output.kind == .alsa ? c.output.device : c.resolve(c.output.path))") }
                print("control socket: \(c.control.socket.isEmpty ? "none" : c.resolve(c.control.socket))")
            } catch {
                warn("ssm-streamd: \(error.message)")
                throw ExitCode(DaemonFailure.badModel)
            }
            return
        }
        let code = Daemon(config: c).run()
        if code != 0 { throw ExitCode(code) }
    }
}

func warn(_ s: String) {
    let line = s + "\n"
    var copy = line
    copy.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
