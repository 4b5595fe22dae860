package core

// Doc methods: the paragraph `lego help RULE` and docs/rules.md show.

func (Genrule) Doc() string {
	return "Runs a bash command over srcs to produce outs, with Bazel's make variables expanded in cmd. " +
		"The command runs as a sandboxed host process, or in a container of image; bash is a tool of the action, so its digest is in the key."
}

func (Filegroup) Doc() string {
	return "Names a set of files: its default outputs are the files of srcs. No action runs."
}
