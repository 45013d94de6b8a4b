{{- /* This chart has no templates: its CRDs are in crds/, which Helm installs before any template of the parent chart. */ -}}
