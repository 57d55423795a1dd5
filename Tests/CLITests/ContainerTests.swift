// ssm-streamd under a real systemd, booted in a container (scripts/systemd-container-test.sh:
// debootstrap + systemd-nspawn; its checks are listed there). Runs as root with debootstrap and
// systemd-nspawn present; the script exits 77 with the reason when the root cannot be built.

import Foundation
import Testing

@Suite("ssm-streamd under systemd in a container", .serialized)
struct ContainerTests {
    static let script = packageRoot.appendingPathComponent("scripts/systemd-container-test.sh").path
    static var runnable: Bool {
        getuid() == 0 && ["/usr/sbin/debootstrap", "/usr/bin/systemd-nspawn"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test("install.sh into a booted Debian 12: systemctl enable --now → active after READY, status over the socket, reload swaps the model, the template instance, journal fields, a hung engine restarted by the watchdog, stop → success",
          .enabled(if: runnable, "needs root, debootstrap and systemd-nspawn (scripts/install-deps.sh installs them)"))
    func container() throws {
        try #require(FileManager.default.isExecutableFile(atPath: releaseDaemon.path), "no release build: run ./test.sh")
        let r = try runCLI([Self.script], timeout: 900, executable: URL(fileURLWithPath: "/bin/bash"))
        let out = String(decoding: r.stdout, as: UTF8.self)
        if r.status == 77 {
            // Not a failure of ours: the machine cannot build the root (say so in the log).
            print("container test skipped: \(r.stderr)")
            return
        }
        #expect(r.status == 0 && out.contains("container test: passed"), "exit \(r.status)\n\(out)\n\(r.stderr)")
        print(out)
    }
}
