//! One copy of each distinct string per file.
//!
//! Values in a file repeat: every user has the same few titles, departments, licenses, roles
//! and groups, and a userName that is usually also their work email. The deserializer gives
//! every value its own [`Text`]; [`Intern`] then walks what a file produced and makes equal
//! values share the first one's allocation, so duplicates are freed while the file is still
//! being read. The table lives for one file only: what repeats across files is a few values per
//! file, and a table of every distinct string of a large directory would cost more than it
//! saves.

use std::collections::HashSet;

use crate::model::{
    Email, Group, License, PhoneNumber, Proficiency, Role, RoleGrant, Spanned, Text, User,
};

/// The distinct strings seen so far in one file.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    seen: HashSet<Text>,
}

impl Interner {
    /// Replaces `text` by the first equal value seen, or remembers it as that first value.
    fn text(&mut self, text: &mut Text) {
        if let Some(first) = self.seen.get(text.as_str()) {
            *text = first.clone();
        } else {
            self.seen.insert(text.clone());
        }
    }
}

/// Values whose strings can be shared through an [`Interner`].
pub(crate) trait Intern {
    /// Makes every string in `self` share the interner's copy.
    fn intern(&mut self, interner: &mut Interner);
}

impl Intern for Text {
    fn intern(&mut self, interner: &mut Interner) {
        interner.text(self);
    }
}

impl<T: Intern> Intern for Spanned<T> {
    fn intern(&mut self, interner: &mut Interner) {
        self.value.intern(interner);
    }
}

impl<T: Intern> Intern for Option<T> {
    fn intern(&mut self, interner: &mut Interner) {
        if let Some(value) = self {
            value.intern(interner);
        }
    }
}

impl<T: Intern> Intern for Vec<T> {
    fn intern(&mut self, interner: &mut Interner) {
        for value in self {
            value.intern(interner);
        }
    }
}

// The impls below name every field, so that a new field is a compile error here until
// someone decides whether its strings are shared.

impl Intern for User {
    fn intern(&mut self, interner: &mut Interner) {
        let User {
            user_name,
            display_name,
            external_id,
            active: _,
            title,
            emails,
            phone_numbers,
            department,
            division,
            employee_number,
            date_hire,
            manager,
            routing_skills,
            routing_languages,
            roles,
            groups,
            license,
            password: _, // secret sources are rare and never repeated
            previously,
        } = self;
        user_name.intern(interner);
        display_name.intern(interner);
        external_id.intern(interner);
        title.intern(interner);
        emails.intern(interner);
        phone_numbers.intern(interner);
        department.intern(interner);
        division.intern(interner);
        employee_number.intern(interner);
        date_hire.intern(interner);
        manager.intern(interner);
        routing_skills.intern(interner);
        routing_languages.intern(interner);
        roles.intern(interner);
        groups.intern(interner);
        license.intern(interner);
        previously.intern(interner);
    }
}

impl Intern for Email {
    fn intern(&mut self, interner: &mut Interner) {
        let Email {
            value,
            kind: _,
            primary: _,
        } = self;
        value.intern(interner);
    }
}

impl Intern for PhoneNumber {
    fn intern(&mut self, interner: &mut Interner) {
        let PhoneNumber {
            value,
            kind: _,
            primary: _,
        } = self;
        value.intern(interner);
    }
}

impl Intern for Proficiency {
    fn intern(&mut self, interner: &mut Interner) {
        let Proficiency {
            name,
            proficiency: _,
        } = self;
        name.intern(interner);
    }
}

impl Intern for RoleGrant {
    fn intern(&mut self, interner: &mut Interner) {
        let RoleGrant { name, divisions } = self;
        name.intern(interner);
        divisions.intern(interner);
    }
}

impl Intern for Group {
    fn intern(&mut self, interner: &mut Interner) {
        let Group {
            display_name,
            description,
            external_id,
            members,
            previously,
            kind: _,
            visibility: _,
            rules_visible: _,
            roles_enabled: _,
            calls_enabled: _,
            include_owners: _,
            owners,
            roles,
        } = self;
        roles.intern(interner);
        display_name.intern(interner);
        description.intern(interner);
        external_id.intern(interner);
        members.intern(interner);
        previously.intern(interner);
        owners.intern(interner);
    }
}

impl Intern for Role {
    fn intern(&mut self, interner: &mut Interner) {
        let Role {
            name,
            description,
            permissions,
            inherits,
            allow_denied_permissions: _, // a written reason, one per role
        } = self;
        name.intern(interner);
        description.intern(interner);
        permissions.intern(interner);
        inherits.intern(interner);
    }
}

impl Intern for License {
    fn intern(&mut self, interner: &mut Interner) {
        let License {
            name,
            description,
            allowed_roles,
            genesys_license,
        } = self;
        name.intern(interner);
        description.intern(interner);
        allowed_roles.intern(interner);
        genesys_license.intern(interner);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Limits, document};
    use crate::model::FileId;

    // Equal strings anywhere in a user end up sharing one allocation; the values stay equal.
    #[test]
    fn equal_strings_share() {
        let text = "users:\n  - userName: a@x.example\n    emails: [{value: a@x.example}]\n    title: Agent\n    roles: [Agent]\n  - userName: b@x.example\n    title: Agent\n";
        let parsed = document::parse_resource_file(FileId(0), text.as_bytes(), Limits::DEFAULT);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let (a, b) = (&parsed.users[0], &parsed.users[1]);
        let email = &a.emails.as_ref().unwrap()[0].value.value;
        assert_eq!(email, "a@x.example");
        assert!(a.user_name.shares_with(email));
        let title = a.title.as_ref().unwrap();
        assert!(title.shares_with(b.title.as_ref().unwrap()));
        assert!(title.shares_with(&a.roles.as_ref().unwrap()[0].name));
        assert!(!a.user_name.shares_with(&b.user_name));
    }
}
