package refsource

// Pulse's own additions to referrers.json, kept apart so that an update of
// the list never loses them. Each is a fact anyone can check, written here
// by Pulse, not copied from another product's table.

// extraHosts are referrers the list lacks or splits. With the look-up
// without the first label, one host covers its subdomains (wikipedia.org
// covers de.wikipedia.org and de.m.wikipedia.org; the list has only the
// English ones).
func extraHosts() map[string]string {
	return map[string]string{
		"wikipedia.org":   "Wikipedia",
		"chatgpt.com":     "ChatGPT",
		"chat.openai.com": "ChatGPT",
		"perplexity.ai":   "Perplexity",
		"lobste.rs":       "Lobsters",
		"t.me":            "Telegram",
		"threads.net":     "Threads",
		"kagi.com":        "Kagi",
		"startpage.com":   "Startpage",
	}
}

// aliases are shorthands people put in utm_source, mapped to the list's
// names; a tag that is a name in any case ("google", "FACEBOOK") needs no
// alias, New maps every name already.
func aliases() map[string]string {
	return map[string]string{
		"fb":         "Facebook",
		"ig":         "Instagram",
		"tw":         "Twitter",
		"x":          "Twitter",
		"hn":         "Hacker News",
		"hackernews": "Hacker News",
		"li":         "LinkedIn",
		"yt":         "Youtube",
		"adwords":    "Google",
		"gads":       "Google",
	}
}
