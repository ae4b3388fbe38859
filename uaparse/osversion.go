package uaparse

import (
	"strings"

	"github.com/medama-io/go-useragent/agents"
)

// osVersion reads the OS version that medama does not give, from the token
// that named the OS: major.minor, as Plausible keeps it ("17.5", "10.15",
// "14"). Windows versions are names: NT 10.0 is "10" (Windows 11 sends the
// same), NT 6.1 is "7".
func osVersion(ua string, os agents.OS) string {
	switch os {
	case agents.OSWindows:
		return windowsVersion(ua)
	case agents.OSMacOS:
		return versionAfter(ua, "Mac OS X ")
	case agents.OSIOS:
		if v := versionAfter(ua, "iPhone OS "); v != "" {
			return v
		}
		return versionAfter(ua, "CPU OS ")
	case agents.OSAndroid:
		return versionAfter(ua, "Android ")
	case agents.OSChromeOS:
		// "CrOS x86_64 14541.0.0": the platform version follows the CPU.
		_, rest, ok := strings.Cut(ua, "CrOS ")
		if !ok {
			return ""
		}
		if i := strings.IndexByte(rest, ' '); i >= 0 {
			return versionAfter(rest[i:], " ")
		}
	}
	return ""
}

var windowsNames = [...]struct{ nt, name string }{
	{"10.0", "10"}, {"6.3", "8.1"}, {"6.2", "8"}, {"6.1", "7"}, {"6.0", "Vista"},
	{"5.2", "XP"}, {"5.1", "XP"}, {"5.0", "2000"},
}

func windowsVersion(ua string) string {
	_, rest, ok := strings.Cut(ua, "Windows NT ")
	if !ok {
		return ""
	}
	for _, w := range windowsNames {
		if strings.HasPrefix(rest, w.nt) {
			return w.name
		}
	}
	return ""
}

// versionAfter returns the version after the first prefix in ua, its
// first two numbers joined by a dot whether the User-Agent separates them
// by "." or "_" (Apple's). "" when no number follows.
func versionAfter(ua, prefix string) string {
	_, rest, ok := strings.Cut(ua, prefix)
	if !ok {
		return ""
	}
	end := 0
	dots := 0
	for end < len(rest) && end < 16 {
		c := rest[end]
		if c == '.' || c == '_' {
			if end == 0 || dots == 1 || end+1 >= len(rest) || rest[end+1] < '0' || rest[end+1] > '9' {
				break
			}
			dots++
		} else if c < '0' || c > '9' {
			break
		}
		end++
	}
	if end == 0 {
		return ""
	}
	v := rest[:end]
	if strings.IndexByte(v, '_') >= 0 {
		return strings.ReplaceAll(v, "_", ".")
	}
	// A copy: a slice of ua would keep the whole header alive in the event.
	return strings.Clone(v)
}
