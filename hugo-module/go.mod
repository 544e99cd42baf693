module github.com/cv-access/cv-access/hugo-module

go 1.22
