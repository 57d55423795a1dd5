// scripts/install.sh: what it installs under --prefix and --destdir, that the installed programs,
// units (the service and the per-configuration template) and configuration work together, that
// a second install keeps an edited configuration, and that --uninstall removes the rest.

import Foundation
import Testing

@Suite("scripts/install.sh", .serialized)
struct InstallTests {
    static let script = packageRoot.appendingPathComponent("scripts/install.sh").path

    func install(_ args: [String]) throws -> CLIResult {
        // --no-build: test.sh built the release binaries (a build here would wait on the
        // package lock the running `swift test` holds).
        try runCLI([Self.script, "--no-build"] + args, executable: URL(fileURLWithPath: "/bin/bash"))
    }

    @Test("install into a staging root: binaries that run, models, man pages, units and a configuration with the prefix written in; both units verify; a second install keeps an edited configuration; --uninstall leaves only the configuration")
    func installUninstall() throws {
        try #require(FileManager.default.isExecutableFile(atPath: releaseCLI.path) && FileManager.default.isExecutableFile(atPath: releaseDaemon.path),
                     "no release build: run ./test.sh")
        let dir = TempDir()
        let root = dir.file("root"), prefix = "/opt/ssm"
        let r = try install(["--prefix", prefix, "--destdir", root])
        expectExit(r, 0)
        let fm = FileManager.default
        let files = ["opt/ssm/bin/ssm-stream", "opt/ssm/bin/ssm-streamd", "opt/ssm/share/man/man1/ssm-stream.1",
                     "opt/ssm/share/man/man8/ssm-streamd.8", "etc/ssm-stream/ssm-streamd.toml",
                     "etc/systemd/system/ssm-streamd.service", "etc/systemd/system/ssm-streamd@.service"]
            + (try fm.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("models").path)
                .filter { $0.hasSuffix(".safetensors") }.map { "opt/ssm/share/ssm-stream/models/" + $0 })
        for f in files { #expect(fm.fileExists(atPath: root + "/" + f), "missing \(f)") }

        // The programs run from where they were installed.
        let version = try runCLI(["version"], executable: URL(fileURLWithPath: root + "/opt/ssm/bin/ssm-stream"))
        expectExit(version, 0)
        // The configuration names the installed model; with the staging root put in front, the
        // installed daemon accepts it.
        let conf = try String(contentsOfFile: root + "/etc/ssm-stream/ssm-streamd.toml", encoding: .utf8)
        #expect(conf.contains("model = \"/opt/ssm/share/ssm-stream/models/butter8-lowpass-1k.safetensors\""), "\(conf.prefix(600))")
        let check = try runCLI(["--check", "-c", root + "/etc/ssm-stream/ssm-streamd.toml",
                                "--set", "model=\(root)/opt/ssm/share/ssm-stream/models/butter8-lowpass-1k.safetensors",
                                "--set", "control.socket="], executable: URL(fileURLWithPath: root + "/opt/ssm/bin/ssm-streamd"))
        expectExit(check, 0)
        // Man pages: one per program, every ssm-stream subcommand in it.
        let man1 = try String(contentsOfFile: root + "/opt/ssm/share/man/man1/ssm-stream.1", encoding: .utf8)
        #expect(man1.hasPrefix(".TH SSM-STREAM 1"))
        for sub in ["run", "design", "inspect", "plot", "init", "train", "eval", "conformance", "bench", "status", "events", "reload", "version"] {
            #expect(man1.contains("USAGE: ssm-stream \(sub)"), "no section for \(sub)")
        }
        let man8 = try String(contentsOfFile: root + "/opt/ssm/share/man/man8/ssm-streamd.8", encoding: .utf8)
        #expect(man8.hasPrefix(".TH SSM-STREAMD 8") && man8.contains("--set"))

        // The units run the installed daemon; the template one configuration per instance, each
        // with its own control socket.
        let units = root + "/etc/systemd/system"
        let service = try String(contentsOfFile: units + "/ssm-streamd.service", encoding: .utf8)
        let template = try String(contentsOfFile: units + "/ssm-streamd@.service", encoding: .utf8)
        #expect(service.contains("ExecStart=/opt/ssm/bin/ssm-streamd --config /etc/ssm-stream/ssm-streamd.toml"))
        #expect(template.contains("ExecStart=/opt/ssm/bin/ssm-streamd --config /etc/ssm-stream/%i.toml --set control.socket=/run/ssm-streamd-%i/control.sock"))
        #expect(template.contains("RuntimeDirectory=ssm-streamd-%i"))
        let analyze = "/usr/bin/systemd-analyze"
        if fm.isExecutableFile(atPath: analyze) {
            for (text, name) in [(service, "ssm-streamd.service"), (template, "ssm-streamd@mics.service")] {
                // As installed, with the staging root in front of the binary so that it exists here.
                let unitDir = dir.file("verify-\(name)")
                try fm.createDirectory(atPath: unitDir, withIntermediateDirectories: true)
                let file = unitDir + "/" + (name.contains("@") ? "ssm-streamd@.service" : name)
                try text.replacingOccurrences(of: "/opt/ssm/bin", with: root + "/opt/ssm/bin").write(toFile: file, atomically: true, encoding: .utf8)
                let v = try runCLI(["verify", "--man=no", unitDir + "/" + name], executable: URL(fileURLWithPath: analyze))
                expectExit(v, 0)
                #expect(v.stderr.isEmpty, "systemd-analyze verify \(name): \(v.stderr)")
            }
        }

        // A second install keeps an administrator's edits.
        let edited = conf + "\n# edited by the administrator\n"
        try edited.write(toFile: root + "/etc/ssm-stream/ssm-streamd.toml", atomically: true, encoding: .utf8)
        let again = try install(["--prefix", prefix, "--destdir", root])
        expectExit(again, 0)
        #expect(String(decoding: again.stdout, as: UTF8.self).contains("kept the existing"))
        #expect(try String(contentsOfFile: root + "/etc/ssm-stream/ssm-streamd.toml", encoding: .utf8) == edited)

        let gone = try install(["--uninstall", "--prefix", prefix, "--destdir", root])
        expectExit(gone, 0)
        for f in files where !f.hasPrefix("etc/ssm-stream") { #expect(!fm.fileExists(atPath: root + "/" + f), "left behind: \(f)") }
        #expect(fm.fileExists(atPath: root + "/etc/ssm-stream/ssm-streamd.toml"), "the configuration is kept")

        let bad = try install(["--prefix", "relative/dir"])
        expectExit(bad, 64)

        // A relative --destdir is relative to where install.sh runs from, not to the package.
        let here = dir.file("elsewhere")
        try fm.createDirectory(atPath: here, withIntermediateDirectories: true)
        let rel = try runCLI([Self.script, "--no-build", "--destdir", "stage"], executable: URL(fileURLWithPath: "/bin/bash"), directory: here)
        expectExit(rel, 0)
        #expect(fm.fileExists(atPath: here + "/stage/usr/local/bin/ssm-streamd"))
        #expect(!fm.fileExists(atPath: packageRoot.appendingPathComponent("stage").path))
    }
}
