// AudioReader/AudioWriter refuse what they cannot do with the right error kind (which decides the
// CLI's exit code) and a message that names the file.

import Foundation
import Testing
@testable import SSMIO
import SSM

@Suite("AudioReader/AudioWriter errors")
struct AudioErrorTests {
    /// Runs `body`, requires it to throw an IOError, and returns it.
    func ioError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> IOError? {
        do { try body() } catch let e as IOError { return e } catch {
            Issue.record("expected an IOError, got \(error)", sourceLocation: sourceLocation)
            return nil
        }
        Issue.record("expected an IOError, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    }

    @Test("missing input file: .noInput, message names the path and the reason")
    func missingFile() {
        let dir = TempDir()
        let path = dir.file("does-not-exist.wav")
        let e = ioError { _ = try AudioReader(path: path) }
        #expect(e?.kind == .noInput)
        #expect(e?.message.contains(path) == true, "\(e?.message ?? "")")
        #expect(e?.message.contains("No such file") == true, "\(e?.message ?? "")")
    }

    @Test("unreadable input file (mode 000): .noInput", .enabled(if: getuid() != 0, "root reads mode-000 files"))
    func unreadableFile() throws {
        let dir = TempDir()
        let path = dir.file("secret.wav")
        try writeAudio(path, AudioFormat(sampleRate: 16000, channels: 1, format: wav16), [0, 0, 0])
        chmod(path, 0)
        let e = ioError { _ = try AudioReader(path: path) }
        #expect(e?.kind == .noInput)
    }

    @Test("a text file is not audio: .dataError, message names the path")
    func notAudio() throws {
        let dir = TempDir()
        let path = dir.file("notes.wav")
        try Data("This is a plain text file, not a RIFF/WAVE stream.\n".utf8).write(to: URL(fileURLWithPath: path))
        let e = ioError { _ = try AudioReader(path: path) }
        #expect(e?.kind == .dataError)
        #expect(e?.message.contains(path) == true, "\(e?.message ?? "")")
    }

    @Test("an empty (0-byte) file: .dataError")
    func emptyFile() throws {
        let dir = TempDir()
        let path = dir.file("empty.wav")
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        let e = ioError { _ = try AudioReader(path: path) }
        #expect(e?.kind == .dataError)
        #expect(e?.message.contains(path) == true, "\(e?.message ?? "")")
    }

    @Test("a truncated WAV header: .dataError")
    func truncatedHeader() throws {
        let dir = TempDir()
        let good = dir.file("good.wav"), bad = dir.file("bad.wav")
        try writeAudio(good, AudioFormat(sampleRate: 16000, channels: 1, format: wav16), [Float](repeating: 0.1, count: 100))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        try bytes.prefix(20).write(to: URL(fileURLWithPath: bad))
        let e = ioError { _ = try AudioReader(path: bad) }
        #expect(e?.kind == .dataError)
    }

    @Test("a directory is not audio: .dataError or .noInput, never a crash")
    func directory() {
        let dir = TempDir()
        let e = ioError { _ = try AudioReader(path: dir.path) }
        #expect(e?.kind == .dataError || e?.kind == .noInput)
        #expect(e?.message.contains(dir.path) == true, "\(e?.message ?? "")")
    }

    @Test("a valid WAV with 0 frames opens and reads 0 frames")
    func zeroFrames() throws {
        let dir = TempDir()
        let path = dir.file("zero.wav")
        try writeAudio(path, AudioFormat(sampleRate: 16000, channels: 1, format: wav16), [])
        let r = try AudioReader(path: path)
        #expect(r.format.sampleRate == 16000)
        var buf = [Float](repeating: 0, count: 16)
        let n = try buf.withUnsafeMutableBufferPointer { (p) throws(IOError) in try r.read(into: p.baseAddress!, frames: 16) }
        #expect(n == 0)
    }

    @Test("AudioWriter refuses FLAC with float samples: .cantCreate naming the path, and creates no file")
    func flacFloatRefused() {
        let dir = TempDir()
        let path = dir.file("x.flac")
        let e = ioError { _ = try AudioWriter(path: path, format: AudioFormat(sampleRate: 16000, channels: 1, format: flacFloat)) }
        #expect(e?.kind == .cantCreate)
        #expect(e?.message.contains(path) == true, "\(e?.message ?? "")")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("AudioWriter refuses 0 channels and a 0 Hz rate: .cantCreate")
    func impossibleShapes() {
        let dir = TempDir()
        let e0 = ioError { _ = try AudioWriter(path: dir.file("a.wav"), format: AudioFormat(sampleRate: 16000, channels: 0, format: wav16)) }
        #expect(e0?.kind == .cantCreate)
        let e1 = ioError { _ = try AudioWriter(path: dir.file("b.wav"), format: AudioFormat(sampleRate: 0, channels: 1, format: wav16)) }
        #expect(e1?.kind == .cantCreate)
    }

    @Test("AudioWriter into a missing directory: .cantCreate naming the path")
    func missingDirectory() {
        let dir = TempDir()
        let path = dir.file("no/such/dir/out.wav")
        let e = ioError { _ = try AudioWriter(path: path, format: AudioFormat(sampleRate: 16000, channels: 1, format: wav16)) }
        #expect(e?.kind == .cantCreate)
        #expect(e?.message.contains(path) == true, "\(e?.message ?? "")")
    }

    @Test("write after close: .ioError; close twice is harmless")
    func writeAfterClose() throws {
        let dir = TempDir()
        let w = try AudioWriter(path: dir.file("c.wav"), format: AudioFormat(sampleRate: 16000, channels: 1, format: wav16))
        try w.close()
        try w.close()
        let x: [Float] = [0.5]
        let e = ioError { try x.withUnsafeBufferPointer { (p) throws(IOError) in try w.write(p.baseAddress!, frames: 1) } }
        #expect(e?.kind == .ioError)
    }
}
