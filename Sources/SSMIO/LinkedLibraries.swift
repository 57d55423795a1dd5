import CALSA
import CSndfile
import CSamplerate

/// Versions of the C audio libraries this build links (for `ssm-stream version` and bug reports).
public enum LinkedLibraries {
    public static var sndfile: String { String(cString: sf_version_string()) }
    public static var alsa: String { String(cString: snd_asoundlib_version()) }
    public static var samplerate: String { String(cString: src_get_version()) }
}
