import ArgumentParser
import SSM
import SSMService

@main
enum Entry {
    static func main() {
        ProcessSetup.pinBLASCoreForSteadyState()
        SSMStream.main()
    }
}

struct SSMStream: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssm-stream",
        abstract: "Run recurrent state-space models (S4, S4D, S5, LRU, H3, Mamba, RG-LRU/Hawk) over audio and sensor streams.",
        version: "0.1.0",
        subcommands: [Run.self, Design.self, Inspect.self, Plot.self, Chain.self, Convert.self, Init.self, Train.self, Eval.self, Conformance.self, Bench.self,
                      Status.self, Events.self, Reload.self, Version.self]
    )
}

/// Exit codes shared by the subcommands (documented in the README).
enum ExitStatus {
    static let failure: Int32 = 1        // a check failed (conformance)
    static let usage: Int32 = 64         // EX_USAGE: bad arguments
    static let dataError: Int32 = 65     // EX_DATAERR: bad input data (audio)
    static let noInput: Int32 = 66       // EX_NOINPUT: input missing or unreadable
    static let badModel: Int32 = 67      // a model file that cannot be used
    static let unavailable: Int32 = 69   // EX_UNAVAILABLE: the daemon is not reachable
    static let diverged: Int32 = 70      // training: the loss became NaN/Inf (last good checkpoint kept)
    static let cantCreate: Int32 = 73    // EX_CANTCREAT: output cannot be written
    static let ioError: Int32 = 74       // EX_IOERR: read/write failed mid-stream
    static let interrupted: Int32 = 75   // training stopped by SIGINT/SIGTERM, checkpoint saved (resume it)
}

/// Writes one line to stderr.
func warn(_ s: String) {
    var e = StandardError()
    print(s, to: &e)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var s = string
        s.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
