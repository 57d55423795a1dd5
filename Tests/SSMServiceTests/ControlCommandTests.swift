import Testing
import SSMService

@Suite("control protocol: request lines")
struct ControlCommandTests {
    @Test("the first word names the command; arguments, blanks and unknown words are handled")
    func parse() {
        #expect(ControlCommand(line: "status") == .status)
        #expect(ControlCommand(line: "reload now") == .reload)
        #expect(ControlCommand(line: "stats") == .stats && ControlCommand(line: "model") == .model && ControlCommand(line: "reset") == .reset)
        #expect(ControlCommand(line: "") == .empty)
        #expect(ControlCommand(line: "   ") == .empty)
        #expect(ControlCommand(line: "STATUS") == .unknown("STATUS"))
        #expect(ControlCommand(line: "\u{0}x") == .unknown("\u{0}x"))
    }

    @Test("stateless commands answer by themselves; the others leave it to the daemon")
    func replies() {
        #expect(ControlCommand.ping.reply == "{\"type\":\"pong\"}\n")
        #expect(ControlCommand.unknown("frob\"").reply == "{\"type\":\"error\",\"message\":\"unknown command 'frob\\\"' (commands: status, stats, model, subscribe, unsubscribe, reload, reset, ping, help)\"}\n")
        #expect(ControlCommand.status.reply == nil && ControlCommand.reload.reply == nil && ControlCommand.empty.reply == nil)
    }
}
