package uaparse

import (
	"strings"

	"github.com/medama-io/go-useragent/agents"
)

// BrowserMobileApp is Plausible's name for a page seen inside an app's own
// web view (Google's search app, Facebook, Instagram, an Android WebView):
// the app, not a browser the visitor chose.
const BrowserMobileApp = "Mobile App"

// browserName turns medama's browser names into the ones Plausible shows
// (UAInspector's, with Plausible's folding of mobile variants into the
// browser).
func browserName(b agents.Browser) string {
	switch b {
	case agents.BrowserEdge:
		return "Microsoft Edge"
	case agents.BrowserIE:
		return "Internet Explorer"
	case agents.BrowserOperaMini:
		return "Opera"
	case agents.BrowserSilk:
		return "Mobile Silk"
	}
	return string(b)
}

func osName(o agents.OS) string {
	switch o {
	case agents.OSMacOS:
		return "Mac"
	case agents.OSLinux:
		return "GNU/Linux"
	case agents.OSChromeOS:
		return "Chrome OS"
	}
	return string(o)
}

// inAppTokens mark an app's web view. "; wv)" is the Android WebView's own
// mark; the rest are apps that name themselves.
var inAppTokens = [...]string{
	"; wv)", "GSA/", "FBAN/", "FBAV/", "Instagram", "Snapchat", "Barcelona ",
	"MicroMessenger/", " Line/", "musical_ly", "TikTok", "Pinterest/", "KAKAOTALK",
}

func isInApp(ua string) bool {
	for _, t := range inAppTokens {
		if strings.Contains(ua, t) {
			return true
		}
	}
	return false
}
