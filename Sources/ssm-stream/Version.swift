import ArgumentParser
import SSM
import SSMIO
import SSMService

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the version, the linked libraries and what this build was compiled for (for bug reports).",
        discussion: """
        Examples:
          ssm-stream version
          ssm-stream --version
        """)

    func run() {
        print("ssm-stream \(SSMStream.configuration.version)")
        print("families: \(Family.allCases.filter(\.isSequenceModel).map(\.rawValue).joined(separator: ", "))")
        print("libsndfile: \(LinkedLibraries.sndfile)")
        print("alsa-lib: \(LinkedLibraries.alsa)")
        print("libsamplerate: \(LinkedLibraries.samplerate)")
        print("openblas: \(blasConfiguration)")
        print("simd: \(simdTarget)")
        print("systemd: \(Systemd.booted ? "booted with systemd" : "not booted with systemd")")
    }
}
