// A regular expression written in tandem.yml (ACL rules, a service's admins): refused at load time when it
// does not compile, so a typo never turns into a rule that silently matches nothing.
import { z } from "zod";

export const regexSource = z.string().superRefine((source, ctx) => {
  try {
    new RegExp(source);
  } catch (cause) {
    ctx.addIssue({ code: "custom", message: `not a valid regular expression (${(cause as Error).message})` });
  }
});
