"""Admin for the portfolio's content: every model editable, children inline and ordered."""

from django.contrib import admin

from .models import KeyFeature, Profile, ProfileLink, Project, Skill, SkillCategory


class ProfileLinkInline(admin.TabularInline):
    model = ProfileLink
    extra = 1


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    inlines = [ProfileLinkInline]
    list_display = ["name", "headline"]


class KeyFeatureInline(admin.TabularInline):
    model = KeyFeature
    extra = 1


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    inlines = [KeyFeatureInline]
    list_display = ["title", "status", "order", "demo_slug", "updated"]
    list_editable = ["status", "order"]
    list_filter = ["status"]
    search_fields = ["title", "summary", "body"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["tech"]


class SkillInline(admin.TabularInline):
    model = Skill
    extra = 1


@admin.register(SkillCategory)
class SkillCategoryAdmin(admin.ModelAdmin):
    inlines = [SkillInline]
    list_display = ["name", "order"]
    list_editable = ["order"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "order"]
    list_filter = ["category"]
    search_fields = ["name", "note"]
