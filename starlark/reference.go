package starlark

import (
	"slices"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/core"
	"github.com/legobuild/lego/rules/oci"
	"github.com/legobuild/lego/rules/ruledoc"
	"github.com/legobuild/lego/rules/swe"
)

// Reference gathers the rule classes every workspace has, in the order
// the reference shows them, and the other built-ins: the one source of
// the loader's natives, `lego help` and docs/rules.md. rule_reference is
// among the rules and renders this very reference.
func Reference() *ruledoc.Reference {
	self := &ruledoc.Rule{}
	ref := &ruledoc.Reference{
		Rules:    slices.Concat(core.Rules(), []engine.Rule{self}, oci.Rules(), swe.Rules()),
		Builtins: Builtins,
	}
	self.Ref = ref
	return ref
}

// Builtins documents what BUILD and .star files can call besides rules;
// a test keeps it in step with what the loader predeclares.
var Builtins = []ruledoc.Builtin{
	builtin("workspace(name)", "in WORKSPACE only: names the workspace, whose root is the directory holding the file"),
	builtin(`load("//pkg:file.star", "sym", local = "sym2")`, "imports symbols from a .star file of the workspace"),
	builtin("glob(include, exclude = [], allow_empty = True)", "files of the package matching the patterns (** spans directories), sorted; subpackages excluded"),
	builtin("package(**defaults)", "default attribute values for the rules declared after it; once, before the first target"),
	builtin("package_name()", "the package of the BUILD file being evaluated"),
	builtin("config(name, default = None)", "the value of --define name=VALUE, else default; an error when neither is given"),
	builtin("struct(**fields)", "an immutable record"),
	builtin(`rule(implementation, attrs = {}, doc = "")`, "a rule defined in Starlark: implementation(ctx) declares files and actions and returns providers"),
	builtin(`provider(doc = "", fields = [])`, "a new provider: called with fields, it makes the values a rule returns to its dependents"),
	builtin("DefaultInfo(files = [])", "the provider naming a target's default outputs (what deps see as its files)"),
	builtin("attr.string, attr.int, attr.bool, attr.label, attr.label_list, attr.string_list, attr.string_dict, attr.dict, attr.string_keyed_label_dict, attr.int_list",
		`attribute types for rule(attrs): each takes default, mandatory and doc (allow_files, allow_single_file, executable and values are accepted and ignored)`),
	builtin("ctx.label", "the target's label (.name, .package)"),
	builtin("ctx.attr", "the attribute values; label attributes give Targets (t.label, t.files, t[Provider])"),
	builtin("ctx.files", "for each label attribute, the list of its targets' files"),
	builtin("ctx.file", "for each single-label attribute, its one File (or None)"),
	builtin("ctx.actions", "declares the target's outputs and the actions that make them:"),
	builtin("ctx.actions.declare_file(filename)", "an output File of the target, under lego-out/<package>/"),
	builtin("ctx.actions.declare_directory(filename)", "an output directory of the target"),
	builtin("ctx.actions.run(outputs, executable, inputs, arguments, env, resources, mnemonic, tools, timeout, image, network, progress_message)", "an action running executable (a File or a host path, a tool of the action); progress_message, with %{label}, %{input} and %{output}, is shown while it runs"),
	builtin("ctx.actions.run_shell(outputs, command, inputs, arguments, env, resources, mnemonic, tools, timeout, image, network, progress_message)", "an action running command with bash -c"),
	builtin("ctx.actions.write(output, content, is_executable = False)", "an action writing content to output at analysis time"),
	builtin("File", "a file: path, short_path, basename, dirname, extension, is_directory, is_source, owner"),
}

func builtin(name, doc string) ruledoc.Builtin { return ruledoc.Builtin{Name: name, Doc: doc} }
