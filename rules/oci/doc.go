package oci

// Doc methods: the paragraph `lego help RULE` and docs/rules.md show.
// Every image is an OCI layout directory plus a manifest file naming its
// digest; the layout's blobs land in the CAS.

func (Pull) Doc() string {
	return "An image fetched from a registry, pinned by digest (in ref as name@sha256:… or in digest), so the fetch is cached like any action."
}

func (Archive) Doc() string {
	return "An image loaded from a docker-save or OCI tarball in the workspace; no registry needed."
}

func (Debian) Doc() string {
	return "A Debian base image made by debootstrap --variant=minbase, with packages included."
}

func (Image) Doc() string {
	return "Layers appended to a base image: files, then env and workdir, then one layer per run step, " +
		"each step run in a container of the image so far (containerd)."
}
